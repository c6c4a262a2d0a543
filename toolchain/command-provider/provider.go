package main

// The gRPC resource provider: the engine's view of command:remote:Command and command:local:Command.

import (
	"context"
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
	state, err := unmarshal(req.GetOlds(), "diff.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "diff.news")
	if err != nil {
		return nil, err
	}
	return diffInputs(olds, state, news, req.GetIgnoreChanges()), nil
}

// Create runs `create` (if set). The new resource's outputs are its inputs plus stdout and
// stderr; a failed create returns no resource, so nothing is recorded in the state.
func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	inputs, err := unmarshal(req.GetProperties(), "create.properties")
	if err != nil {
		return nil, err
	}
	// The id is made first: a preview returns one too (the engine hands it to the program), as
	// upstream's does.
	id, err := resource.NewUniqueHex(resourceName(req.GetName(), req.GetUrn()), 8, 0)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		props, err := marshal(outputs(kind, inputs, unknownOutput(), unknownOutput()), "create.outputs")
		if err != nil {
			return nil, err
		}
		return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
	}
	spec, err := parseSpec(kind, inputs)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	stdout, stderr := "", ""
	if spec.Create != nil {
		opCtx, cancel := p.opContext(ctx, req.GetTimeout())
		defer cancel()
		// A new resource has no previous output to pass on.
		stdout, stderr, err = execute(opCtx, spec, p.newRun("create", req.GetUrn(), *spec.Create, spec.CreateSecret, spec, nil))
		if err != nil {
			return nil, status.Error(codes.Unknown, err.Error())
		}
	}
	props, err := marshal(outputs(kind, inputs, resource.NewStringProperty(stdout), resource.NewStringProperty(stderr)),
		"create.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Update runs `update`, or `create` when there is no `update`, whatever input changed (the
// engine calls Update for any change but one of `triggers`, which replaces). The new stdout and
// stderr replace the stored ones; with neither command set, the stored ones stay. A failed
// update leaves the stored state as it was.
func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	kind, err := kindOf(req.GetType(), req.GetUrn())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	olds, err := unmarshal(req.GetOlds(), "update.olds")
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews(), "update.news")
	if err != nil {
		return nil, err
	}
	for _, k := range req.GetIgnoreChanges() {
		if v, ok := olds[resource.PropertyKey(k)]; ok {
			news[resource.PropertyKey(k)] = v
		}
	}
	prevOut := storedOutputs(olds)
	stdout := resource.NewStringProperty(prevOut.Stdout)
	stderr := resource.NewStringProperty(prevOut.Stderr)

	if req.GetPreview() {
		if outputsChangeInPreview(kind, olds, news) {
			stdout, stderr = unknownOutput(), unknownOutput()
		}
		props, err := marshal(outputs(kind, news, stdout, stderr), "update.outputs")
		if err != nil {
			return nil, err
		}
		return &pulumirpc.UpdateResponse{Properties: props}, nil
	}

	spec, err := parseSpec(kind, news)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	command, commandSecret := spec.Update, spec.UpdateSecret
	if command == nil {
		command, commandSecret = spec.Create, spec.CreateSecret
	}
	if command != nil {
		var prev *prevOutputs
		if spec.AddPrevious {
			prev = &prevOut
		}
		opCtx, cancel := p.opContext(ctx, req.GetTimeout())
		defer cancel()
		out, errOut, err := execute(opCtx, spec, p.newRun("update", req.GetUrn(), *command, commandSecret, spec, prev))
		if err != nil {
			return nil, status.Error(codes.Unknown, err.Error())
		}
		stdout, stderr = resource.NewStringProperty(out), resource.NewStringProperty(errOut)
	}
	props, err := marshal(outputs(kind, news, stdout, stderr), "update.outputs")
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete runs the stored `delete` (if any) with the stored connection, environment, stdin and
// logging, and the stored outputs as PULUMI_COMMAND_STDOUT/_STDERR.
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
		out := storedOutputs(state)
		prev = &out
	}
	opCtx, cancel := p.opContext(ctx, req.GetTimeout())
	defer cancel()
	if _, _, err := execute(opCtx, spec, p.newRun("delete", req.GetUrn(), *spec.Delete, spec.DeleteSecret, spec, prev)); err != nil {
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

func (p *commandProvider) newRun(op, urn, command string, commandSecret bool, spec *commandSpec,
	prev *prevOutputs) *run {
	return &run{Op: op, URN: urn, Command: command, CommandSecret: commandSecret, Env: spec.Environment,
		Prev: prev, Stdin: spec.Stdin, Logging: spec.Logging, Log: p.log}
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
func storedOutputs(state resource.PropertyMap) prevOutputs {
	var out prevOutputs
	for key, dst := range map[string]*string{pStdout: &out.Stdout, pStderr: &out.Stderr} {
		if f := get(state, key); f.present && !f.unknown && f.v.IsString() {
			*dst = f.v.StringValue()
		}
	}
	return out
}

func unknownOutput() resource.PropertyValue {
	return resource.MakeComputed(resource.NewStringProperty(""))
}

// outputs is the resource state: every input (with its secrecy), plus stdout and stderr, which
// are not secret: upstream marks an output secret only when it mirrors a secret input of the
// same name (the engine adds additionalSecretOutputs). The connection of a remote command is
// always secret.
func outputs(kind resourceKind, inputs resource.PropertyMap, stdout, stderr resource.PropertyValue) resource.PropertyMap {
	outs := inputsOnly(inputs)
	if v, ok := outs[pConnection]; ok && kind == kindRemote && !isNullValue(v) {
		outs[pConnection] = ensureSecret(v)
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
