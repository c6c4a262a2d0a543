package main

// Remote commands against an in-process SSH server that, unless a test sets acceptEnv, refuses
// every env request as a stock OpenSSH sshd without AcceptEnv does.

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"google.golang.org/protobuf/types/known/emptypb"
)

func init() {
	// Keep retry tests quick.
	dialBackoffFirst = 50 * time.Millisecond
	dialBackoffMax = 200 * time.Millisecond
}

// hostileValues are environment values that would break or exploit naive quoting.
var hostileValues = []string{
	"'; rm -rf /",
	`it's "quoted" \"twice\" \\ and 'single'`,
	"line one\nline two\n\nline four",
	"$(touch PWNED_DOLLAR)",
	"`touch PWNED_BACKTICK`",
	"${HOME} $HOME $$ $1 ! * ? ~ & | ; < > # %",
	"trailing backslash \\",
	"''''",
	"",
	"\t tabs and ünïcödé ✓ \r",
}

func assertNoPwned(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "PWNED*"))
	if len(matches) > 0 {
		t.Fatalf("command substitution ran: %v", matches)
	}
}

// counterScript prints "<label> <n>", n counting the runs on that server (state in its dir).
func counterScript(label string) string {
	return `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "` + label + ` $n"`
}

func TestRemoteCreateUpdateDelete(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, rec := testProvider()
	marker := filepath.Join(t.TempDir(), "deleted")

	inputs := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str(`echo created; echo "to stderr" >&2; echo "stdout-from-create=${PULUMI_COMMAND_STDOUT-unset}"`),
		"update":     str(`echo "updated, previously: ${PULUMI_COMMAND_STDOUT-unset}"`),
		"delete":     str(`printf '%s|%s' "${PULUMI_COMMAND_STDOUT-unset}" "${PULUMI_COMMAND_STDERR-unset}" > ` + shellQuote(marker)),
	})
	checked, failures := checkInputs(kindRemote, inputs)
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	id, state, err := doCreate(t, p, remoteURN, checked, 0)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// Upstream's id: the resource name and 8 random hex digits.
	if len(id) != len("step")+8 || !strings.HasPrefix(id, "step") {
		t.Errorf("id %q", id)
	}
	stdout, sec := plainString(t, state, "stdout")
	if stdout != "created\nstdout-from-create=unset" || sec {
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
	if names := srv.envNames(); len(names) != 0 {
		t.Errorf("create sent env requests %v; there is no environment and no previous output", names)
	}

	// Only the connection changes: `update` runs (with the previous output offered as env
	// requests, which this server refuses), and its output replaces the stored one.
	news := checked.Copy()
	news["connection"] = connection(srv, key, map[string]resource.PropertyValue{"perDialTimeout": num(9)})
	state2, err := doUpdate(t, p, remoteURN, checked, state, news)
	if err != nil {
		t.Fatalf("Update (connection only): %v", err)
	}
	if srv.execCount() != 2 {
		t.Fatalf("a connection-only change must run the update command; %d commands ran", srv.execCount())
	}
	if out, _ := plainString(t, state2, "stdout"); out != "updated, previously: unset" {
		t.Errorf("update stdout = %q", out)
	}
	if errOut, _ := plainString(t, state2, "stderr"); errOut != "" {
		t.Errorf("update stderr = %q, want the new (empty) one", errOut)
	}
	if c := state2["connection"].SecretValue().Element.ObjectValue(); c["perDialTimeout"].NumberValue() != 9 {
		t.Errorf("new connection not stored: %v", c)
	}
	if got := srv.envNames(); !slices.Equal(got, []string{envPrevStdout, envPrevStderr}) {
		t.Errorf("update env requests = %v", got)
	}
	if w := rec.withSeverity(pulumirpc.LogSeverity_WARNING); len(w) != 2 {
		t.Errorf("want one warning per refused previous output, got %v", w)
	}

	// Delete runs the stored delete with the stored outputs offered (refused here: unset).
	if err := doDelete(t, p, remoteURN, state2, 0); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got, _ := os.ReadFile(marker); string(got) != "unset|unset" {
		t.Errorf("delete saw %q", got)
	}
	// Only stdout was non-empty after the update: only it was offered.
	if got := srv.envNames()[2:]; !slices.Equal(got, []string{envPrevStdout}) {
		t.Errorf("delete env requests = %v", got)
	}
	// Each run dialled its own connection (and this provider closes it afterwards).
	if _, connects := srv.counts(); connects != 3 {
		t.Errorf("%d SSH connections for create, update and delete, want 3", connects)
	}
	if n := srv.openConns(); n != 0 {
		t.Errorf("%d SSH connections left open", n)
	}
}

// Any change other than triggers is an update, and every update runs `update` (or `create`).
func TestRemoteUpdateRunsOnAnyInputChange(t *testing.T) {
	key := newTestKey(t)
	cases := []struct {
		name   string
		change func(srv *sshServer, m resource.PropertyMap)
	}{
		{"connection.perDialTimeout", func(srv *sshServer, m resource.PropertyMap) {
			m["connection"] = connection(srv, key, map[string]resource.PropertyValue{"perDialTimeout": num(7)})
		}},
		{"connection.dialErrorLimit", func(srv *sshServer, m resource.PropertyMap) {
			m["connection"] = connection(srv, key, map[string]resource.PropertyValue{"dialErrorLimit": num(4)})
		}},
		{"delete", func(_ *sshServer, m resource.PropertyMap) { m["delete"] = str("echo other delete") }},
		{"logging", func(_ *sshServer, m resource.PropertyMap) { m["logging"] = str("none") }},
		{"stdin", func(_ *sshServer, m resource.PropertyMap) { m["stdin"] = str("new input") }},
		{"addPreviousOutputInEnv", func(_ *sshServer, m resource.PropertyMap) {
			m["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		}},
		{"environment", func(_ *sshServer, m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"LC_STEP": str("2")})
		}},
	}
	for _, withUpdate := range []bool{false, true} {
		for _, tc := range cases {
			label := "create"
			if withUpdate {
				label = "update"
			}
			t.Run(tc.name+"/runs "+label, func(t *testing.T) {
				srv := newSSHServer(t, key.signer.PublicKey())
				srv.acceptEnv = []string{"LANG", "LC_*"} // Debian's default, for the environment case
				srv.start("127.0.0.1:0")
				p, _ := testProvider()
				olds := props(map[string]resource.PropertyValue{
					"connection":  connection(srv, key, nil),
					"create":      str(counterScript("create")),
					"delete":      str("echo delete"),
					"environment": obj(map[string]resource.PropertyValue{"LC_STEP": str("1")}),
				})
				if withUpdate {
					olds["update"] = str(counterScript("update"))
				}
				_, state, err := doCreate(t, p, remoteURN, olds, 0)
				if err != nil {
					t.Fatal(err)
				}
				news := olds.Copy()
				tc.change(srv, news)

				d := diffVia(t, remoteURN, olds, news)
				if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || len(d.GetReplaces()) != 0 {
					t.Fatalf("want an update (no replace), got %v", d)
				}
				state2, err := doUpdate(t, p, remoteURN, olds, state, news)
				if err != nil {
					t.Fatal(err)
				}
				if srv.execCount() != 2 {
					t.Fatalf("%d commands ran, want create then %s", srv.execCount(), label)
				}
				if out, _ := plainString(t, state2, "stdout"); out != label+" 2" {
					t.Errorf("stdout after the update = %q, want %q", out, label+" 2")
				}
			})
		}
	}
}

func TestRemoteUpdateWithNeitherCommandKeepsOutputs(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	olds := props(map[string]resource.PropertyValue{"connection": connection(srv, key, nil), "delete": str("true")})
	state := olds.Copy()
	state["stdout"], state["stderr"] = str("kept"), str("kept too")
	news := olds.Copy()
	news["delete"] = str("echo changed")
	out, err := doUpdate(t, p, remoteURN, olds, state, news)
	if err != nil {
		t.Fatal(err)
	}
	if srv.execCount() != 0 {
		t.Fatal("nothing should run without create or update")
	}
	if v, _ := plainString(t, out, "stdout"); v != "kept" {
		t.Errorf("stdout = %q", v)
	}
	if out["delete"].StringValue() != "echo changed" {
		t.Errorf("new inputs not stored: %v", out)
	}
}

func TestRemoteEnvironmentRefusedFailsTheCommand(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0") // no AcceptEnv
	p, rec := testProvider()
	inputs := props(map[string]resource.PropertyValue{
		"connection":  connection(srv, key, nil),
		"create":      str("echo should-not-run"),
		"environment": obj(map[string]resource.PropertyValue{"GREETING": str("hi")}),
	})
	_, _, err := doCreate(t, p, remoteURN, inputs, 0)
	if err == nil || !strings.Contains(err.Error(), `"GREETING"`) {
		t.Fatalf("want a failure naming GREETING, got %v", err)
	}
	if srv.execCount() != 0 {
		t.Fatal("the command ran although its environment was refused")
	}
	errs := rec.withSeverity(pulumirpc.LogSeverity_ERROR)
	if len(errs) != 1 || !strings.Contains(errs[0].msg, "AcceptEnv") || errs[0].ephemeral || errs[0].urn != remoteURN {
		t.Errorf("want one (non-ephemeral) error message about AcceptEnv, got %+v", errs)
	}

	// The same on update and delete: the step fails, nothing runs.
	state := inputs.Copy()
	state["stdout"], state["stderr"] = str(""), str("")
	news := inputs.Copy()
	news["create"] = str("echo still-not")
	if _, err := doUpdate(t, p, remoteURN, inputs, state, news); err == nil {
		t.Error("update with a refused environment must fail")
	}
	state["delete"] = str("echo no-delete-either")
	if err := doDelete(t, p, remoteURN, state, 0); err == nil {
		t.Error("delete with a refused environment must fail")
	}
	if srv.execCount() != 0 {
		t.Fatal("a command ran although its environment was refused")
	}
}

func TestRemoteEnvironmentAcceptedReachesTheCommand(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.acceptEnv = []string{"LANG", "LC_*", "HOSTILE_*"}
	srv.start("127.0.0.1:0")
	p, _ := testProvider()
	env := map[string]resource.PropertyValue{"LANG": str("C.UTF-8")}
	script := []string{`printf '%s\0' "$LANG"`}
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
	want := append([]string{"C.UTF-8"}, hostileValues...)
	if !slices.Equal(parts, want) {
		t.Fatalf("values seen by the command:\n%q\nwant\n%q", parts, want)
	}
	// The command text is sent as it is: no export lines in front of it.
	srv.mu.Lock()
	sent := srv.commands[0]
	srv.mu.Unlock()
	if sent != strings.Join(script, "; ") {
		t.Errorf("exec request %q is not the command", sent)
	}
	assertNoPwned(t, srv.dir)
}

func TestRemotePreviousOutputRefusedOnlyWarns(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0") // no AcceptEnv
	p, rec := testProvider()
	olds := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str(`echo "ran; prev=${PULUMI_COMMAND_STDOUT-unset}/${PULUMI_COMMAND_STDERR-unset}"`),
	})
	state := olds.Copy()
	state["stdout"], state["stderr"] = str("old out"), str("old err")
	news := olds.Copy()
	news["stdin"] = str("x")
	out, err := doUpdate(t, p, remoteURN, olds, state, news)
	if err != nil {
		t.Fatalf("a refused PULUMI_COMMAND_* must not fail the update: %v", err)
	}
	if v, _ := plainString(t, out, "stdout"); v != "ran; prev=unset/unset" {
		t.Errorf("stdout = %q", v)
	}
	warnings := rec.withSeverity(pulumirpc.LogSeverity_WARNING)
	if len(warnings) != 2 || !strings.Contains(warnings[0].msg, envPrevStdout) ||
		!strings.Contains(warnings[1].msg, envPrevStderr) || warnings[0].ephemeral {
		t.Errorf("want a warning for each refused variable, got %+v", warnings)
	}
	if e := rec.withSeverity(pulumirpc.LogSeverity_ERROR); len(e) != 0 {
		t.Errorf("no error messages expected: %+v", e)
	}
	for _, e := range srv.envRequests() {
		if e.accepted {
			t.Errorf("test server accepted %s", e.name)
		}
	}
}

func TestRemotePreviousOutputAccepted(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.acceptEnv = []string{"PULUMI_COMMAND_*"}
	srv.start("127.0.0.1:0")
	p, rec := testProvider()
	marker := filepath.Join(t.TempDir(), "deleted")
	inputs := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str("echo first; echo first-err >&2"),
		"update":     str(`echo "update saw: $PULUMI_COMMAND_STDOUT|$PULUMI_COMMAND_STDERR"`),
		"delete":     str(`printf '%s|%s' "$PULUMI_COMMAND_STDOUT" "${PULUMI_COMMAND_STDERR-unset}" > ` + shellQuote(marker)),
	})
	_, state, err := doCreate(t, p, remoteURN, inputs, 0)
	if err != nil {
		t.Fatal(err)
	}
	news := inputs.Copy()
	news["logging"] = str("stdout")
	state2, err := doUpdate(t, p, remoteURN, inputs, state, news)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := plainString(t, state2, "stdout")
	if out2 != "update saw: first|first-err" {
		t.Errorf("update stdout = %q", out2)
	}
	if err := doDelete(t, p, remoteURN, state2, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(marker); string(got) != out2+"|unset" {
		t.Errorf("delete saw %q", got)
	}
	if w := rec.withSeverity(pulumirpc.LogSeverity_WARNING); len(w) != 0 {
		t.Errorf("no warnings expected: %+v", w)
	}
}

func TestRemotePreviousOutputNotSentWhenEmptyOrDisabled(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey())
	srv.acceptEnv = []string{"PULUMI_COMMAND_*"}
	srv.start("127.0.0.1:0")
	p, rec := testProvider()
	base := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str(`echo "${PULUMI_COMMAND_STDOUT-unset}/${PULUMI_COMMAND_STDERR-unset}"`),
		"delete":     str(`true`),
	})
	stateWith := func(stdout, stderr string, in resource.PropertyMap) resource.PropertyMap {
		s := in.Copy()
		s["stdout"], s["stderr"] = str(stdout), str(stderr)
		return s
	}
	update := func(t *testing.T, olds, state, news resource.PropertyMap) (string, []string) {
		t.Helper()
		before := len(srv.envNames())
		out, err := doUpdate(t, p, remoteURN, olds, state, news)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := plainString(t, out, "stdout")
		return v, srv.envNames()[before:]
	}

	t.Run("both empty", func(t *testing.T) {
		news := base.Copy()
		news["stdin"] = str("1")
		out, sent := update(t, base, stateWith("", "", base), news)
		if out != "unset/unset" || len(sent) != 0 {
			t.Errorf("stdout %q, env requests %v", out, sent)
		}
	})
	t.Run("only stderr", func(t *testing.T) {
		news := base.Copy()
		news["stdin"] = str("2")
		out, sent := update(t, base, stateWith("", "e", base), news)
		if out != "unset/e" || !slices.Equal(sent, []string{envPrevStderr}) {
			t.Errorf("stdout %q, env requests %v", out, sent)
		}
	})
	t.Run("addPreviousOutputInEnv false", func(t *testing.T) {
		news := base.Copy()
		news["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		out, sent := update(t, base, stateWith("o", "e", base), news)
		if out != "unset/unset" || len(sent) != 0 {
			t.Errorf("stdout %q, env requests %v", out, sent)
		}
	})
	t.Run("addPreviousOutputInEnv false in the stored state, on delete", func(t *testing.T) {
		in := base.Copy()
		in["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		before := len(srv.envNames())
		if err := doDelete(t, p, remoteURN, stateWith("o", "e", in), 0); err != nil {
			t.Fatal(err)
		}
		if sent := srv.envNames()[before:]; len(sent) != 0 {
			t.Errorf("delete sent %v", sent)
		}
	})
	if w := rec.withSeverity(pulumirpc.LogSeverity_WARNING); len(w) != 0 {
		t.Errorf("no warnings expected: %+v", w)
	}
}

func TestRemoteDeleteRunsStoredScriptWithStoredConnection(t *testing.T) {
	key := newTestKey(t)
	a := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	b := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	inA := props(map[string]resource.PropertyValue{
		"connection": connection(a, key, nil),
		"create":     str("echo created"),
		"delete":     str("echo delete-a > deleted"),
	})
	_, stateA, err := doCreate(t, p, remoteURN, inA, 0)
	if err != nil {
		t.Fatal(err)
	}
	// An update moves the resource to host b with another delete script: create runs there.
	inB := inA.Copy()
	inB["connection"] = connection(b, key, nil)
	inB["delete"] = str("echo delete-b > deleted")
	stateB, err := doUpdate(t, p, remoteURN, inA, stateA, inB)
	if err != nil {
		t.Fatal(err)
	}
	if a.execCount() != 1 || b.execCount() != 1 {
		t.Fatalf("exec counts a=%d b=%d", a.execCount(), b.execCount())
	}
	// Delete gets only the stored state: the latest one names b and its delete script.
	if err := doDelete(t, p, remoteURN, stateB, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(b.dir, "deleted")); string(got) != "delete-b\n" {
		t.Errorf("b: deleted = %q", got)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "deleted")); err == nil {
		t.Error("the delete ran on a")
	}
	// An older state (say, the replaced resource's) runs its own script on its own host.
	if err := doDelete(t, p, remoteURN, stateA, 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(a.dir, "deleted")); string(got) != "delete-a\n" {
		t.Errorf("a: deleted = %q", got)
	}

	// No delete stored: nothing runs, the host is not even dialled.
	noDelete := stateB.Copy()
	delete(noDelete, "delete")
	acceptsBefore, _ := b.counts()
	if err := doDelete(t, p, remoteURN, noDelete, 0); err != nil {
		t.Fatal(err)
	}
	if accepts, _ := b.counts(); accepts != acceptsBefore {
		t.Error("a delete without a delete command dialled the host")
	}
}

func TestRemoteReadReturnsStateUnchanged(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	srv.stop() // a dead host: refresh does not notice
	p, _ := testProvider()
	inputs := props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("echo hi"), "delete": str("echo bye"),
	})
	state := inputs.Copy()
	state["stdout"], state["stderr"] = str("hi"), str("")
	resp, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Id: "step12345678", Urn: remoteURN,
		Properties: toStruct(t, state), Inputs: toStruct(t, inputs)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetId() != "step12345678" || !fromStruct(t, resp.GetProperties()).DeepEquals(state) ||
		!fromStruct(t, resp.GetInputs()).DeepEquals(inputs) {
		t.Fatalf("Read changed the state: %v", resp)
	}
	if accepts, _ := srv.counts(); accepts != 0 {
		t.Error("Read dialled the host")
	}
}

func TestRemoteExitStatusError(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	script := `for i in $(seq 1 60); do echo "out line $i"; done; echo "it broke" >&2; exit 3`
	_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     str(script),
	}), 0)
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	// Like upstream's: the exit status, the command, and all it printed.
	// stdout and stderr are two channels: the order of their lines is not fixed.
	if want := fmt.Sprintf("Process exited with status 3: running %q:\n", script); !strings.Contains(msg, want) {
		t.Errorf("error lacks %q:\n%s", want, msg)
	}
	for _, want := range []string{"out line 1\n", "out line 60", "it broke"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}

	// A secret command is left out of the message.
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil),
		"create":     secret(str("echo visible-output; exit 4 # the-secret-part")),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "status 4") || !strings.Contains(err.Error(), "visible-output") ||
		strings.Contains(err.Error(), "the-secret-part") {
		t.Fatalf("secret command failure: %v", err)
	}
}

// listenAndCount accepts TCP connections and closes them at once (an SSH handshake then fails),
// counting them: each is one dial attempt.
func listenAndCount(t *testing.T) (addr string, count func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	n := make(chan struct{}, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
			n <- struct{}{}
		}
	}()
	return ln.Addr().String(), func() int { time.Sleep(50 * time.Millisecond); return len(n) }
}

func TestRemoteDialAttemptsFollowDialErrorLimit(t *testing.T) {
	key := newTestKey(t)
	for _, tc := range []struct{ limit, attempts int }{{0, 1}, {1, 2}, {3, 4}} {
		t.Run(fmt.Sprintf("dialErrorLimit=%d", tc.limit), func(t *testing.T) {
			addr, count := listenAndCount(t)
			srv := newSSHServer(t, key.signer.PublicKey())
			srv.addr = addr
			p, rec := testProvider()
			_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
				"connection": connection(srv, key, map[string]resource.PropertyValue{"dialErrorLimit": num(float64(tc.limit))}),
				"create":     str("true"),
			}), 30)
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("failed %d times", tc.attempts)) {
				t.Fatalf("want a give-up after %d attempts, got %v", tc.attempts, err)
			}
			if n := count(); n != tc.attempts {
				t.Errorf("%d dial attempts, want %d (dialErrorLimit+1)", n, tc.attempts)
			}
			status := 0
			for _, e := range rec.withSeverity(pulumirpc.LogSeverity_INFO) {
				if strings.Contains(e.msg, "trying again") && e.ephemeral {
					status++
				}
			}
			if status != tc.attempts-1 {
				t.Errorf("want %d ephemeral retry messages, got %v", tc.attempts-1, rec.messages())
			}
		})
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
		"connection": connection(srv, key, map[string]resource.PropertyValue{"dialErrorLimit": num(-1)}),
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
		if strings.Contains(m, "trying again") {
			retried = true
			if strings.Contains(m, "127.0.0.1") || !strings.Contains(m, "unlimited") {
				t.Errorf("retry message %q", m)
			}
		}
	}
	if !retried {
		t.Error("no retry status was logged")
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
	if accepts, _ := srv.counts(); accepts != 2 {
		t.Errorf("an authentication failure is retried like any dial error: %d attempts, want 2", accepts)
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

	// A different host key: rejected; retried as any dial error is (upstream does not tell it
	// apart), and nothing runs.
	other := newTestKey(t)
	runs := srv.execCount()
	before, _ := srv.counts()
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, map[string]resource.PropertyValue{
			"hostKey": str(other.authorized()), "dialErrorLimit": num(2)}),
		"create": str("echo should-not-run"),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "host key mismatch") {
		t.Fatalf("want a host key mismatch, got %v", err)
	}
	if !strings.Contains(err.Error(), ssh.FingerprintSHA256(srv.hostKey.signer.PublicKey())) {
		t.Errorf("error should name the presented key's fingerprint: %v", err)
	}
	if after, _ := srv.counts(); after-before != 3 {
		t.Errorf("%d attempts, want 3 (dialErrorLimit 2)", after-before)
	}
	if srv.execCount() != runs {
		t.Fatal("a command ran despite the host key mismatch")
	}

	// A host key that is not a key (also an empty one): a configuration error, no dial.
	for _, hk := range []string{"not a key", ""} {
		before, _ := srv.counts()
		_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
			"connection": connection(srv, key, map[string]resource.PropertyValue{"hostKey": str(hk)}),
			"create":     str("true"),
		}), 0)
		if err == nil || !strings.Contains(err.Error(), "connection.hostKey") {
			t.Fatalf("hostKey %q: want a parse error, got %v", hk, err)
		}
		if after, _ := srv.counts(); after != before {
			t.Errorf("hostKey %q: dialled anyway", hk)
		}
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
		"password": str("s3cret pw"), "dialErrorLimit": num(0),
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

// serveAgent runs an SSH agent holding key on a unix socket and returns the socket's path.
func serveAgent(t *testing.T, key testKey) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, err := ssh.ParseRawPrivateKey([]byte(key.pem))
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: raw}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(keyring, c) }()
		}
	}()
	return sock
}

func TestRemoteAgent(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()
	sock := serveAgent(t, key)
	connVia := func(extra map[string]resource.PropertyValue) resource.PropertyValue {
		m := map[string]resource.PropertyValue{
			"host": str("127.0.0.1"), "port": num(float64(srv.port())), "user": str("u"), "dialErrorLimit": num(0)}
		for k, v := range extra {
			m[k] = v
		}
		return secret(obj(m))
	}
	// agentSocketPath.
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connVia(map[string]resource.PropertyValue{"agentSocketPath": str(sock)}),
		"create":     str("echo via agent")}), 0)
	if err != nil {
		t.Fatalf("agentSocketPath: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "via agent" {
		t.Errorf("stdout %q", out)
	}
	// SSH_AUTH_SOCK when agentSocketPath is not set.
	t.Setenv("SSH_AUTH_SOCK", sock)
	if _, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connVia(nil), "create": str("true")}), 0); err != nil {
		t.Fatalf("SSH_AUTH_SOCK: %v", err)
	}
	// SSH_AUTH_SOCK is used in addition to a private key; when it cannot be reached the run
	// fails before dialling, as upstream's does.
	t.Setenv("SSH_AUTH_SOCK", filepath.Join(t.TempDir(), "gone.sock"))
	before, _ := srv.counts()
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("true")}), 0)
	if err == nil || !strings.Contains(err.Error(), "SSH agent") {
		t.Fatalf("want an agent error, got %v", err)
	}
	if after, _ := srv.counts(); after != before {
		t.Error("dialled although the agent could not be reached")
	}
}

func TestRemoteThroughProxy(t *testing.T) {
	key := newTestKey(t)
	jump := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	target := newSSHServer(t, key.signer.PublicKey())
	target.acceptEnv = []string{"LC_*"}
	target.start("127.0.0.1:0")
	p, _ := testProvider()
	conn := connection(target, key, map[string]resource.PropertyValue{
		"proxy": obj(map[string]resource.PropertyValue{
			"host": str("127.0.0.1"), "port": num(float64(jump.port())), "user": str("jumper"),
			"privateKey": str(key.pem), "hostKey": str(jump.hostKey.authorized()),
		}),
		"hostKey": str(target.hostKey.authorized()),
	})
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection":  conn,
		"create":      str(`echo "via jump host $LC_HOP"`),
		"environment": obj(map[string]resource.PropertyValue{"LC_HOP": str("1")}),
	}), 20)
	if err != nil {
		t.Fatalf("Create through proxy: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "via jump host 1" {
		t.Errorf("stdout %q", out)
	}
	if jump.execCount() != 0 || target.execCount() != 1 || len(jump.envRequests()) != 0 {
		t.Errorf("the command must run on the target only (jump %d, target %d)", jump.execCount(), target.execCount())
	}

	// An unreachable jump host: the error says so.
	jump.stop()
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(target, key, map[string]resource.PropertyValue{
			"proxy": obj(map[string]resource.PropertyValue{
				"host": str("127.0.0.1"), "port": num(float64(jump.port())), "privateKey": str(key.pem),
				"dialErrorLimit": num(1),
			}),
		}),
		"create": str("true")}), 20)
	if err == nil || !strings.Contains(err.Error(), "create: proxy: SSH connection to the proxy failed 2 times") {
		t.Fatalf("want a proxy error, got %v", err)
	}
}

// The operation's timeout (customTimeouts) and Cancel end the dial retries, but a command that
// has started runs to its end, as with upstream.
func TestRemoteTimeoutEndsDialRetriesOnly(t *testing.T) {
	key := newTestKey(t)
	srv := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	p, _ := testProvider()

	start := time.Now()
	_, state, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(srv, key, nil), "create": str("sleep 2; echo finished")}), 1)
	if err != nil {
		t.Fatalf("a running command must not be stopped by the timeout: %v", err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "finished" || time.Since(start) < 2*time.Second {
		t.Errorf("stdout %q after %v", out, time.Since(start))
	}

	// Nothing listens: with no dial limit, the timeout ends the retries.
	dead := newSSHServer(t, key.signer.PublicKey()).start("127.0.0.1:0")
	dead.stop()
	start = time.Now()
	_, _, err = doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
		"connection": connection(dead, key, map[string]resource.PropertyValue{"dialErrorLimit": num(-1)}),
		"create":     str("true")}), 1)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("want the timeout to end the dialling, got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dialling went on for %v", d)
	}

	// Cancel ends the retries too, and the provider still works afterwards.
	done := make(chan error, 1)
	go func() {
		_, _, err := doCreate(t, p, remoteURN, props(map[string]resource.PropertyValue{
			"connection": connection(dead, key, map[string]resource.PropertyValue{"dialErrorLimit": num(-1)}),
			"create":     str("true")}), 0)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	if _, err := p.Cancel(context.Background(), &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "canceled") {
			t.Fatalf("want a cancellation error, got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Cancel did not stop the dialling")
	}
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
		logging string // "-": not set
		want    []string
		absent  []string
	}{
		{"-", []string{"out1", "out2", "err1"}, nil},
		{"stdoutAndStderr", []string{"out1", "out2", "err1"}, nil},
		{"stdout", []string{"out1", "out2"}, []string{"err1"}},
		{"stderr", []string{"err1"}, []string{"out1", "out2"}},
		{"none", nil, []string{"out1", "out2", "err1"}},
		// Upstream does not check the value: anything else logs nothing (and is not an error).
		{"verbose", nil, []string{"out1", "out2", "err1"}},
	} {
		t.Run("logging="+tc.logging, func(t *testing.T) {
			p, rec := testProvider()
			in := props(map[string]resource.PropertyValue{
				"connection": connection(srv, key, nil), "create": str(script)})
			if tc.logging != "-" {
				in["logging"] = str(tc.logging)
			}
			if _, failures := checkInputs(kindRemote, in); len(failures) != 0 {
				t.Fatal(failures)
			}
			if _, _, err := doCreate(t, p, remoteURN, in, 0); err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			rec.mu.Lock()
			for _, e := range rec.entries {
				got[e.msg] = true
				if e.urn != remoteURN || e.sev != pulumirpc.LogSeverity_INFO || !e.ephemeral {
					t.Errorf("log entry %+v: want an ephemeral info message for the resource", e)
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
			if len(tc.want) == 0 && len(rec.messages()) != 0 {
				t.Errorf("logging=%s logged %v", tc.logging, rec.messages())
			}
		})
	}
}
