package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/emptypb"
)

func init() {
	// Keep retry tests quick.
	dialBackoffFirst = 100 * time.Millisecond
	dialBackoffMax = 500 * time.Millisecond
}

func TestRemoteCreateUpdateDelete(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	marker := filepath.Join(t.TempDir(), "deleted")

	inputs := props(map[string]resource.PropertyValue{
		"connection":  connection(srv, key, nil),
		"create":      str(`echo "created $GREETING"; echo "to stderr" >&2; echo "stdout-from-create=${PULUMI_COMMAND_STDOUT-unset}"`),
		"update":      str(`echo "updated, previously: $PULUMI_COMMAND_STDOUT"`),
		"delete":      str(`printf '%s|%s' "$PULUMI_COMMAND_STDOUT" "$PULUMI_COMMAND_STDERR" > ` + shellQuote(marker)),
		"environment": obj(map[string]resource.PropertyValue{"GREETING": str("hello 'world'")}),
	})
	checked, failures := checkInputs(kindRemote, inputs)
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	id, state, err := doCreate(t, p, remoteURN, checked, 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if !strings.HasPrefix(id, "step-") || len(id) < len("step-")+16 {
		t.Errorf("id %q", id)
	}
	stdout, sec := plainString(t, state, "stdout")
	if stdout != "created hello 'world'\nstdout-from-create=unset" || sec {
		t.Errorf("create stdout = %q (secret %v)", stdout, sec)
	}
	if stderr, _ := plainString(t, state, "stderr"); stderr != "to stderr" {
		t.Errorf("create stderr = %q", stderr)
	}
	if !state["connection"].IsSecret() {
		t.Error("connection must be secret in the outputs")
	}
	if state["create"].StringValue() != checked["create"].StringValue() {
		t.Error("inputs must be part of the outputs")
	}
	srv.mu.Lock()
	envReqs := srv.envReqs
	srv.mu.Unlock()
	if envReqs != 0 {
		t.Errorf("the provider sent %d env requests; it must not rely on AcceptEnv", envReqs)
	}

	// Only the connection changes (say, a longer dial timeout): nothing runs, outputs are kept.
	news := checked.Copy()
	news["connection"] = connection(srv, key, map[string]resource.PropertyValue{"perDialTimeout": num(9)})
	runs := srv.execCount()
	state2, err := doUpdate(t, p, remoteURN, checked, state, news)
	if err != nil {
		t.Fatalf("Update (connection only): %v", err)
	}
	if srv.execCount() != runs {
		t.Fatal("a connection-only change must not run a command")
	}
	if out, _ := plainString(t, state2, "stdout"); out != stdout {
		t.Errorf("stdout not kept: %q", out)
	}
	if c := state2["connection"].SecretValue().Element.ObjectValue(); c["perDialTimeout"].NumberValue() != 9 {
		t.Errorf("new connection not stored: %v", c)
	}

	// The environment changes: `update` runs, with the previous stdout in its environment.
	news2 := news.Copy()
	news2["environment"] = obj(map[string]resource.PropertyValue{"GREETING": str("hi")})
	state3, err := doUpdate(t, p, remoteURN, news, state2, news2)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if srv.execCount() != runs+1 {
		t.Fatalf("update should run exactly one command, ran %d", srv.execCount()-runs)
	}
	out3, _ := plainString(t, state3, "stdout")
	if out3 != "updated, previously: "+stdout {
		t.Errorf("update stdout = %q", out3)
	}
	if errOut, _ := plainString(t, state3, "stderr"); errOut != "" {
		t.Errorf("update stderr = %q", errOut)
	}

	// Delete gets the stored outputs in PULUMI_COMMAND_STDOUT / _STDERR.
	if err := doDelete(t, p, remoteURN, state3, 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	got, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != out3+"|" {
		t.Errorf("delete saw %q, want %q", got, out3+"|")
	}
}

func TestRemoteUpdateFallsBackToCreateAndDeleteWithoutPreviousOutput(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	marker := filepath.Join(t.TempDir(), "env")
	inputs := props(map[string]resource.PropertyValue{
		"connection":             connection(srv, key, nil),
		"create":                 str("echo v1"),
		"delete":                 str(`echo "${PULUMI_COMMAND_STDOUT-unset}" > ` + shellQuote(marker)),
		"addPreviousOutputInEnv": resource.NewBoolProperty(false),
	})
	_, state, err := doCreate(t, p, remoteURN, inputs, 0)
	if err != nil {
		t.Fatal(err)
	}
	news := inputs.Copy()
	news["create"] = str("echo v2; echo ${PULUMI_COMMAND_STDOUT-unset}")
	state2, err := doUpdate(t, p, remoteURN, inputs, state, news)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plainString(t, state2, "stdout"); out != "v2\nunset" {
		t.Errorf("update without `update` should run create, without previous output: %q", out)
	}
	if err := doDelete(t, p, remoteURN, state2, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(marker); string(got) != "unset\n" {
		t.Errorf("delete saw %q", got)
	}
}

func TestRemoteStdin(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str("tr a-z A-Z; echo; wc -l"),
		"stdin":      str("hello\nworld\n"),
	}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "HELLO\nWORLD\n\n0" {
		t.Errorf("stdout = %q", out)
	}
	// No stdin: the command sees end of input at once rather than hanging.
	_, state, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("cat; echo done"),
	}), 10)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "done" {
		t.Errorf("stdout = %q", out)
	}
}

func TestRemoteHostileEnvironment(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	env := map[string]resource.PropertyValue{}
	var script []string
	for i, v := range hostileValues {
		name := fmt.Sprintf("HOSTILE_%d", i)
		env[name] = str(v)
		script = append(script, fmt.Sprintf(`printf '%%s\0' "$%s"`, name))
	}
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection":  connection(srv, key, nil),
		"create":      str(strings.Join(script, "; ")),
		"environment": obj(env),
	}), 0)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := plainString(t, state, "stdout")
	parts := strings.Split(strings.TrimSuffix(out, "\x00"), "\x00")
	// The very last value ends in "\r"; the provider only trims a trailing "\n".
	if len(parts) != len(hostileValues) {
		t.Fatalf("got %d values: %q", len(parts), out)
	}
	for i, v := range hostileValues {
		if parts[i] != v {
			t.Errorf("HOSTILE_%d = %q, want %q", i, parts[i], v)
		}
	}
	assertNoPwned(t, srv.dir)
}

func TestRemoteExitStatusError(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str(`for i in $(seq 1 60); do echo "out line $i"; done; echo "it broke" >&2; exit 3`),
	}), 0)
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{"create", "exit", "status 3", "out line 60", "out line 21", "it broke", "last 40 lines"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "out line 20\n") {
		t.Errorf("error should keep only the last 40 lines:\n%s", msg)
	}
}

func TestRemoteDialRetryWhenServerStartsLate(t *testing.T) {
	key := newTestKey(t)
	// Reserve a free port, then release it: nothing listens there for a while.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.addr = addr
	inputs := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{"dialErrorLimit": num(30)}),
		"create":     str("echo booted"),
	})
	go func() {
		time.Sleep(1200 * time.Millisecond)
		srv.start(addr)
	}()
	p, rec := testProvider()
	start := time.Now()
	_, state, err := doCreate(t, p, remoteURN, inputs, 30)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "booted" {
		t.Errorf("stdout = %q", out)
	}
	if time.Since(start) < time.Second {
		t.Error("connected before the server started?")
	}
	retried := false
	for _, m := range rec.messages() {
		if strings.Contains(m, "retrying") {
			retried = true
			if strings.Contains(m, "127.0.0.1") {
				t.Errorf("retry message names the host: %q", m)
			}
		}
	}
	if !retried {
		t.Error("no retry status was logged")
	}
}

func TestRemoteDialGivesUpAfterLimit(t *testing.T) {
	key := newTestKey(t)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.addr = addr
	p, rec := testProvider()
	_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{"dialErrorLimit": num(3)}),
		"create":     str("true"),
	}), 30)
	if err == nil || !strings.Contains(err.Error(), "after 3 attempt") {
		t.Fatalf("want give-up after 3 attempts, got %v", err)
	}
	if n := len(rec.messages()); n != 2 {
		t.Errorf("want 2 retry messages, got %d: %v", n, rec.messages())
	}
}

func TestRemoteWrongKeyRejected(t *testing.T) {
	good, bad := newTestKey(t), newTestKey(t)
	srv := newSSHServer(t, good.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, bad, map[string]resource.PropertyValue{"dialErrorLimit": num(1)}),
		"create":     str("echo should-not-run"),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("want an authentication error, got %v", err)
	}
	if srv.execCount() != 0 {
		t.Fatal("a command ran with the wrong key")
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatal("error leaks the private key")
	}
}

func TestRemoteHostKey(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()

	// The right host key: accepted.
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{"hostKey": str(srv.hostKey.authorized())}),
		"create":     str("echo ok"),
	}), 0)
	if err != nil {
		t.Fatalf("matching host key: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "ok" {
		t.Errorf("stdout %q", out)
	}

	// A different host key: rejected at once, not retried, nothing runs.
	other := newTestKey(t)
	runs := srv.execCount()
	start := time.Now()
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{
			"hostKey": str(other.authorized()), "dialErrorLimit": num(10)}),
		"create": str("echo should-not-run"),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("want a host key mismatch, got %v", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.hostKey.signer.PublicKey())) {
		t.Errorf("error should name the presented key's fingerprint: %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Error("a host key mismatch must not be retried")
	}
	if srv.execCount() != runs {
		t.Fatal("a command ran despite the host key mismatch")
	}

	// Garbage host key: a clear configuration error.
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{"hostKey": str("not a key")}),
		"create":     str("true"),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "connection.hostKey") {
		t.Fatalf("want a hostKey parse error, got %v", err)
	}
}

func TestRemotePasswordAndEncryptedKeyAuth(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.password = "s3cret pw"
	srv.start("127.0.0.1:0")
	p, _ := testProvider()

	conn := secret(obj(map[string]resource.PropertyValue{
		"host": str("127.0.0.1"), "port": num(float64(srv.port())), "user": str("u"),
		"password": str("s3cret pw"), "dialErrorLimit": num(1),
	}))
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": conn, "create": str("echo by password")}), 0)
	if err != nil {
		t.Fatalf("password auth: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "by password" {
		t.Errorf("stdout %q", out)
	}

	// The same key, encrypted with a passphrase.
	var raw any
	raw, err = ssh.ParseRawPrivateKey([]byte(key.pem))
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("pass phrase"))
	if err != nil {
		t.Fatal(err)
	}
	encrypted := string(pem.EncodeToMemory(block))
	_, state, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{
			"privateKey": str(encrypted), "privateKeyPassword": str("pass phrase")}),
		"create": str("echo by encrypted key")}), 0)
	if err != nil {
		t.Fatalf("encrypted key: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "by encrypted key" {
		t.Errorf("stdout %q", out)
	}
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{"privateKey": str(encrypted)}),
		"create":     str("true")}), 0)
	if err == nil || !strings.Contains(err.Error(), "privateKeyPassword") {
		t.Fatalf("want a missing-passphrase error, got %v", err)
	}
}

func TestRemoteThroughProxy(t *testing.T) {
	key := newTestKey(t)
	jump := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	target := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	conn := connection(target, key, map[string]resource.PropertyValue{
		"proxy": obj(map[string]resource.PropertyValue{
			"host": str("127.0.0.1"), "port": num(float64(jump.port())), "user": str("jumper"),
			"privateKey": str(key.pem), "hostKey": str(jump.hostKey.authorized()),
		}),
		"hostKey": str(target.hostKey.authorized()),
	})
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": conn, "create": str("echo via jump host")}), 20)
	if err != nil {
		t.Fatalf("Create through proxy: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "via jump host" {
		t.Errorf("stdout %q", out)
	}
	if jump.execCount() != 0 || target.execCount() != 1 {
		t.Errorf("the command must run on the target only (jump %d, target %d)", jump.execCount(), target.execCount())
	}
}

func TestRemoteTimeoutAndCancel(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	start := time.Now()
	_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("echo started; sleep 30")}), 1)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("want a timeout, got %v", err)
	}
	if !strings.Contains(err.Error(), "started") {
		t.Errorf("timeout error should show the output so far: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("timeout took %v", d)
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
			"connection": connection(srv, key, nil), "create": str("sleep 30")}), 0)
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	if _, err := p.Cancel(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "cancelled") {
			t.Fatalf("want a cancellation error, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Cancel did not stop the running command")
	}
	// The provider still works after a Cancel.
	if _, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("true")}), 0); err != nil {
		t.Fatalf("after Cancel: %v", err)
	}
}

func TestRemoteLoggingStreamsLines(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	script := "echo out1; echo err1 >&2; echo out2"
	for _, tc := range []struct {
		logging string
		want    []string
		absent  []string
	}{
		{"", []string{"out1", "out2", "err1"}, nil},
		{"stdoutAndStderr", []string{"out1", "out2", "err1"}, nil},
		{"stdout", []string{"out1", "out2"}, []string{"err1"}},
		{"stderr", []string{"err1"}, []string{"out1", "out2"}},
		{"none", nil, []string{"out1", "out2", "err1"}},
	} {
		t.Run("logging="+tc.logging, func(t *testing.T) {
			p, rec := testProvider()
			in := props(map[string]resource.PropertyValue{
				"connection": connection(srv, key, nil), "create": str(script)})
			if tc.logging != "" {
				in["logging"] = str(tc.logging)
			}
			if _, _, err := doCreate(t, p, remoteURN, in, 0); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			rec.mu.Lock()
			for _, e := range rec.entries {
				got[e.msg] = true
				if e.urn != remoteURN || e.sev != pulumirpc.LogSeverity_INFO {
					t.Errorf("log entry %+v: want the resource URN and severity info", e)
				}
			}
			rec.mu.Unlock()
			for _, w := range tc.want {
				if !got[w] {
					t.Errorf("line %q not logged; got %v", w, rec.messages())
				}
			}
			for _, a := range tc.absent {
				if got[a] {
					t.Errorf("line %q logged with logging=%s", a, tc.logging)
				}
			}
			if tc.logging == "none" && len(rec.messages()) != 0 {
				t.Errorf("logging=none logged %v", rec.messages())
			}
		})
	}
}
