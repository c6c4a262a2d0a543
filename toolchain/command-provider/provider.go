package main

// The gRPC resource provider: the engine's view of command:remote:Command and command:local:Command.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	version string
	host    *hostLogger  // engine connection, for Handshake and Attach
	log     engineLogger // where command output goes (host, or a recorder in tests)

	mu        sync.Mutex
	cancelCtx context.Context // cancelled by Cancel
	cancel    context.CancelFunc
}

func newProvider(version string, host *hostLogger) *commandProvider {
	ctx, cancel := context.WithCancel(context.Background())
	if host == nil {
		host = &hostLogger{}
	}
	return &commandProvider{version: version, host: host, log: host, cancelCtx: ctx, cancel: cancel}
}

// opContext derives the context for running a command: it ends when the request ends, when
// the engine calls Cancel, or after timeout seconds (0: no timeout).
func (p *commandProvider) opContext(ctx context.Context, timeout float64) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	provCtx := p.cancelCtx
	p.mu.Unlock()
	stop := context.AfterFunc(provCtx, cancel)
	if timeout > 0 {
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeout(ctx, time.Duration(timeout*float64(time.Second)))
		return ctx, func() { cancelTimeout(); stop(); cancel() }
	}
	return ctx, func() { stop(); cancel() }
}

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: p.version}, nil
}

func (p *commandProvider) Handshake(_ context.Context, req *pulumirpc.ProviderHandshakeRequest) (
	*pulumirpc.ProviderHandshakeResponse, error) {
	if req.GetEngineAddress() != "" {
		if err := p.host.connect(req.GetEngineAddress()); err != nil {
			return nil, status.Errorf(codes.Unavailable, "could not connect to the engine: %v", err)
		}
	}
	return &pulumirpc.ProviderHandshakeResponse{AcceptSecrets: true}, nil
}

func (p *commandProvider) Attach(_ context.Context, req *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	if err := p.host.connect(req.GetAddress()); err != nil {
		return nil, status.Errorf(codes.Unavailable, "could not connect to the engine: %v", err)
	}
	return &emptypb.Empty{}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	s, err := schemaJSON(p.version)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: s}, nil
}

func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (p *commandProvider) GetMapping(context.Context, *pulumirpc.GetMappingRequest) (*pulumirpc.GetMappingResponse, error) {
	return &pulumirpc.GetMappingResponse{}, nil
}

func (p *commandProvider) GetMappings(context.Context, *pulumirpc.GetMappingsRequest) (*pulumirpc.GetMappingsResponse, error) {
	return &pulumirpc.GetMappingsResponse{}, nil
}

func (p *commandProvider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, status.Errorf(codes.Unimplemented, "function %q %s", req.GetTok(), unsupportedNote)
}

func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.mu.Lock()
	p.cancel()
	// Later operations (the engine may still delete or refresh) get a fresh context.
	p.cancelCtx, p.cancel = context.WithCancel(context.Background())
	p.mu.Unlock()
	return &emptypb.Empty{}, nil
}

func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	news, err := unmarshal(req.GetNews(), "check.news")
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	checked, failures := checkInputs(kind, news)
	inputs, err := marshal(checked, "check.inputs")
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: inputs}
	for _, f := range failures {
		resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: f.Property, Reason: f.Reason})
	}
	return resp, nil
}

func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if _, err := kindOf(req.GetType(), req.GetUrn()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	olds, err := previousInputs(req.GetOldInputs(), req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "diff.news")
	if err != nil {
		return nil, err
	}
	return diffInputs(olds, news, req.GetIgnoreChanges()), nil
}

func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	inputs, err := unmarshal(req.GetProperties(), "create.properties")
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		outs := outputs(kind, inputs, unknownOutput(), unknownOutput(), false)
		props, err := marshal(outs, "create.outputs")
		if err != nil {
			return nil, err
		}
		return &pulumirpc.CreateResponse{Properties: props}, nil
	}
	spec, err := parseSpec(kind, inputs)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	id, err := newID(resourceName(req.GetName(), req.GetUrn()))
	if err != nil {
		return nil, err
	}
	stdout, stderr := "", ""
	if spec.Create != nil {
		opCtx, cancel := p.opContext(ctx, req.GetTimeout())
		defer cancel()
		stdout, stderr, err = execute(opCtx, spec, p.newRun("create", req.GetUrn(), *spec.Create, spec, nil))
		if err != nil {
			return nil, status.Error(codes.Unknown, err.Error())
		}
	}
	outs := outputs(kind, inputs, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr), spec.Secret)
	props, err := marshal(outs, "create.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	olds, err := unmarshal(req.GetOlds(), "update.olds")
	if err != nil {
		return nil, err
	}
	oldIn, err := previousInputs(req.GetOldInputs(), req.GetOlds())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "update.news")
	if err != nil {
		return nil, err
	}

	prevOut, prevOutSecret := storedOutputs(olds)
	runs := updateRunsCommand(kind, oldIn, news)
	var command *string
	if runs {
		if f := get(news, pUpdate); f.present {
			command, err = commandText(f, pUpdate, req.GetPreview())
		} else if f := get(news, pCreate); f.present {
			command, err = commandText(f, pCreate, req.GetPreview())
		}
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		runs = command != nil
	}

	if req.GetPreview() {
		var outs resource.PropertyMap
		if runs {
			outs = outputs(kind, news, unknownOutput(), unknownOutput(), false)
		} else {
			outs = outputs(kind, news, resource.NewStringProperty(prevOut.Stdout),
				resource.NewStringProperty(prevOut.Stderr), prevOutSecret || secretInputs(news))
		}
		props, err := marshal(outs, "update.outputs")
		if err != nil {
			return nil, err
		}
		return &pulumirpc.UpdateResponse{Properties: props}, nil
	}

	spec, err := parseSpec(kind, news)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	stdout, stderr := prevOut.Stdout, prevOut.Stderr
	secret := spec.Secret
	if runs {
		var prev *prevOutputs
		if spec.AddPrevious {
			prev = &prevOut
		}
		opCtx, cancel := p.opContext(ctx, req.GetTimeout())
		defer cancel()
		stdout, stderr, err = execute(opCtx, spec, p.newRun("update", req.GetUrn(), *command, spec, prev))
		if err != nil {
			return nil, status.Error(codes.Unknown, err.Error())
		}
	} else {
		secret = secret || prevOutSecret
	}
	outs := outputs(kind, news, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr), secret)
	props, err := marshal(outs, "update.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	state, err := unmarshal(req.GetProperties(), "delete.properties")
	if err != nil {
		return nil, err
	}
	if isAbsent(state, pDelete) {
		return &emptypb.Empty{}, nil
	}
	spec, err := parseSpec(kind, state)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	var prev *prevOutputs
	if spec.AddPrevious {
		out, _ := storedOutputs(state)
		prev = &out
	}
	opCtx, cancel := p.opContext(ctx, req.GetTimeout())
	defer cancel()
	if _, _, err := execute(opCtx, spec, p.newRun("delete", req.GetUrn(), *spec.Delete, spec, prev)); err != nil {
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &emptypb.Empty{}, nil
}

func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if _, err := kindOf(req.GetType(), req.GetUrn()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (p *commandProvider) newRun(op, urn, command string, spec *commandSpec, prev *prevOutputs) *run {
	return &run{Op: op, URN: urn, Command: command, Env: spec.Environment, Prev: prev, Stdin: spec.Stdin,
		Logging: spec.Logging, Secret: spec.Secret, Log: p.log}
}

// previousInputs returns the inputs the resource was last created or updated with: the engine
// sends them as old_inputs; older engines send only the state, which holds them too.
func previousInputs(oldInputs, olds *structpb.Struct) (resource.PropertyMap, error) {
	if oldInputs != nil && len(oldInputs.GetFields()) > 0 {
		return unmarshal(oldInputs, "old_inputs")
	}
	state, err := unmarshal(olds, "olds")
	if err != nil {
		return nil, err
	}
	return inputsOnly(state), nil
}

// storedOutputs reads stdout and stderr from a stored state.
func storedOutputs(state resource.PropertyMap) (prevOutputs, bool) {
	var out prevOutputs
	secret := false
	for key, dst := range map[string]*string{pStdout: &out.Stdout, pStderr: &out.Stderr} {
		f := get(state, key)
		if f.present && !f.unknown && f.v.IsString() {
			*dst = f.v.StringValue()
		}
		secret = secret || f.secret
	}
	return out, secret
}

// commandText reads a command input; in a preview it may not be known yet, which still counts
// as "there is a command".
func commandText(f field, name string, preview bool) (*string, error) {
	if f.unknown && preview {
		s := ""
		return &s, nil
	}
	return f.str(name)
}

func unknownOutput() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

// outputs is the resource state: every input, plus stdout and stderr. The connection is always
// secret; stdout and stderr are secret when secret is set.
func outputs(kind resourceKind, inputs resource.PropertyMap, stdout, stderr resource.PropertyValue,
	secret bool) resource.PropertyMap {
	outs := inputsOnly(inputs)
	if v, ok := outs[pConnection]; ok && kind == kindRemote && !isNullValue(v) {
		outs[pConnection] = ensureSecret(v)
	}
	if secret {
		stdout, stderr = ensureSecret(stdout), ensureSecret(stderr)
	}
	outs[pStdout] = stdout
	outs[pStderr] = stderr
	return outs
}

func resourceName(name, urn string) string {
	if name != "" {
		return name
	}
	if urn != "" {
		return resource.URN(urn).Name()
	}
	return "command"
}

// newID returns a unique resource ID: the resource name and 8 random bytes in hex.
func newID(name string) (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("could not make a resource ID: %w", err)
	}
	return name + "-" + hex.EncodeToString(b), nil
}
