package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Upstream (pulumi-go-provider's infer) marks an output secret only when it mirrors a secret
// input of the same name: secret inputs stay secret in the state, stdout and stderr do not
// become secret, and the output lines are logged as usual.
func TestSecretInputsDoNotMakeOutputsSecret(t *testing.T) {
	cases := []struct {
		name   string
		inputs map[string]resource.PropertyValue
	}{
		{"plain", map[string]resource.PropertyValue{"create": str("echo hi")}},
		{"secret create", map[string]resource.PropertyValue{"create": secret(str("echo hi"))}},
		{"secret stdin", map[string]resource.PropertyValue{"create": str("cat"), "stdin": secret(str("hi"))}},
		{"secret env value", map[string]resource.PropertyValue{"create": str("echo $X"),
			"environment": obj(map[string]resource.PropertyValue{"X": secret(str("hi"))})}},
		{"secret env map", map[string]resource.PropertyValue{"create": str("echo $X"),
			"environment": secret(obj(map[string]resource.PropertyValue{"X": str("hi")}))}},
		{"secret delete", map[string]resource.PropertyValue{"create": str("echo hi"), "delete": secret(str("true"))}},
		{"secret triggers", map[string]resource.PropertyValue{"create": str("echo hi"),
			"triggers": resource.NewArrayProperty([]resource.PropertyValue{secret(str("t"))})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, rec := testProvider()
			_, state, err := doCreate(t, p, localURN, props(tc.inputs), 0)
			if err != nil {
				t.Fatal(err)
			}
			out, outSecret := plainString(t, state, "stdout")
			_, errSecret := plainString(t, state, "stderr")
			if out != "hi" || outSecret || errSecret {
				t.Errorf("stdout = %q (secret %v), stderr secret %v: want plain outputs", out, outSecret, errSecret)
			}
			logged := false
			for _, m := range rec.messages() {
				logged = logged || m == "hi"
			}
			if !logged {
				t.Errorf("the output line was not logged: %v", rec.messages())
			}
			// Inputs keep their secrecy in the state.
			for k, v := range tc.inputs {
				if v.ContainsSecrets() && !state[resource.PropertyKey(k)].ContainsSecrets() {
					t.Errorf("%s lost its secrecy", k)
				}
			}

			// The same on update.
			news := props(tc.inputs)
			news["logging"] = str("stdoutAndStderr")
			st2, err := doUpdate(t, p, localURN, props(tc.inputs), state, news)
			if err != nil {
				t.Fatal(err)
			}
			if _, s := plainString(t, st2, "stdout"); s {
				t.Error("update made stdout secret")
			}
		})
	}
}

func TestFailureMessageLeavesOutASecretCommand(t *testing.T) {
	p, _ := testProvider()
	_, _, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		"create": secret(str(`echo "shown"; exit 1 # token=hunter2`)),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "status 1") || !strings.Contains(err.Error(), "shown") {
		t.Fatalf("error = %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("secret command text in the error: %v", err)
	}
}

func TestCreatePreviewAndFailedCreate(t *testing.T) {
	p, _ := testProvider()
	// A remote preview: a plain connection comes back secret, outputs unknown, nothing runs.
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: remoteURN, Preview: true,
		Properties: toStruct(t, props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": unknown()}),
			"create":     str("echo hi"),
		}))})
	if err != nil {
		t.Fatal(err)
	}
	prev := fromStruct(t, resp.GetProperties())
	if !prev["connection"].IsSecret() || !prev["stdout"].IsComputed() || !prev["stderr"].IsComputed() {
		t.Errorf("preview outputs: %v", prev)
	}
	// Upstream makes the (random) id before it looks at the preview flag.
	if id := resp.GetId(); len(id) != len("step")+8 || !strings.HasPrefix(id, "step") {
		t.Errorf("preview id %q", id)
	}
	// A failed create returns no resource (no id, no properties): nothing is recorded.
	cr, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: localURN,
		Properties: toStruct(t, props(map[string]resource.PropertyValue{"create": str("echo half; exit 1")}))})
	if err == nil || cr.GetId() != "" || cr.GetProperties() != nil {
		t.Fatalf("failed create returned %v, %v", cr, err)
	}
}

func TestReadReturnsStateUnchanged(t *testing.T) {
	p, _ := testProvider()
	state := toStruct(t, props(map[string]resource.PropertyValue{"create": secret(str("x")), "stdout": str("o")}))
	inputs := toStruct(t, props(map[string]resource.PropertyValue{"create": secret(str("x"))}))
	resp, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Id: "id-1", Urn: localURN,
		Properties: state, Inputs: inputs})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetId() != "id-1" || !fromStruct(t, resp.GetProperties()).DeepEquals(fromStruct(t, state)) ||
		!fromStruct(t, resp.GetInputs()).DeepEquals(fromStruct(t, inputs)) {
		t.Fatalf("Read changed the state: %v", resp)
	}
}

// TestOverGRPC drives the provider through a real gRPC server on 127.0.0.1.
func TestOverGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	p, _ := testProvider()
	p.version = "1.2.1"
	pulumirpc.RegisterResourceProviderServer(srv, p)
	go srv.Serve(ln)
	defer srv.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := pulumirpc.NewResourceProviderClient(conn)
	ctx := context.Background()

	info, err := c.GetPluginInfo(ctx, &emptypb.Empty{})
	if err != nil || info.GetVersion() != "1.2.1" {
		t.Fatalf("GetPluginInfo: %v %v", info, err)
	}
	hs, err := c.Handshake(ctx, &pulumirpc.ProviderHandshakeRequest{})
	if err != nil || !hs.GetAcceptSecrets() {
		t.Fatalf("Handshake: %v %v", hs, err)
	}
	cfg, err := c.Configure(ctx, &pulumirpc.ConfigureRequest{})
	if err != nil || !cfg.GetAcceptSecrets() || !cfg.GetSupportsPreview() {
		t.Fatalf("Configure: %v %v", cfg, err)
	}
	if _, err := c.CheckConfig(ctx, &pulumirpc.CheckRequest{News: toStruct(t, props(map[string]resource.PropertyValue{
		"anything": str("goes")}))}); err != nil {
		t.Fatalf("CheckConfig: %v", err)
	}
	schema, err := c.GetSchema(ctx, &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Name      string                     `json:"name"`
		Version   string                     `json:"version"`
		Resources map[string]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal([]byte(schema.GetSchema()), &parsed); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if parsed.Name != "command" || parsed.Version != "1.2.1" || parsed.Resources[tokenRemote] == nil ||
		parsed.Resources[tokenLocal] == nil {
		t.Fatalf("schema: %+v", parsed)
	}

	inputs := props(map[string]resource.PropertyValue{"create": str("echo over grpc"), "delete": secret(str("true"))})
	chk, err := c.Check(ctx, &pulumirpc.CheckRequest{Urn: localURN, Type: tokenLocal, News: toStruct(t, inputs)})
	if err != nil || len(chk.GetFailures()) > 0 {
		t.Fatalf("Check: %v %v", chk, err)
	}
	cr, err := c.Create(ctx, &pulumirpc.CreateRequest{Urn: localURN, Type: tokenLocal, Name: "step",
		Properties: chk.GetInputs(), Timeout: 30})
	if err != nil {
		t.Fatal(err)
	}
	state := fromStruct(t, cr.GetProperties())
	if v, s := plainString(t, state, "stdout"); v != "over grpc" || s {
		t.Fatalf("stdout = %q secret=%v", v, s)
	}
	d, err := c.Diff(ctx, &pulumirpc.DiffRequest{Urn: localURN, Olds: cr.GetProperties(), OldInputs: chk.GetInputs(),
		News: chk.GetInputs()})
	if err != nil || d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("Diff: %v %v", d, err)
	}
	if _, err := c.Delete(ctx, &pulumirpc.DeleteRequest{Urn: localURN, Id: cr.GetId(),
		Properties: cr.GetProperties()}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(ctx, &pulumirpc.CreateRequest{Urn: localURN, Properties: toStruct(t, props(
		map[string]resource.PropertyValue{"create": str("exit 7")}))})
	if err == nil || !strings.Contains(err.Error(), "status 7") {
		t.Fatalf("want the exit status over gRPC, got %v", err)
	}
}
