package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func TestLocalCreateUpdateDelete(t *testing.T) {
	p, rec := testProvider()
	dir := t.TempDir()
	marker := filepath.Join(dir, "deleted")
	t.Setenv("FROM_PROVIDER_ENV", "inherited")
	inputs := props(map[string]resource.PropertyValue{
		"create":      str(`pwd; echo "$NAME/$FROM_PROVIDER_ENV"; cat; echo oops >&2`),
		"update":      str(`echo "update saw: $PULUMI_COMMAND_STDOUT"`),
		"delete":      str(`printf '%s' "$PULUMI_COMMAND_STDOUT" > deleted`),
		"dir":         str(dir),
		"environment": obj(map[string]resource.PropertyValue{"NAME": str("$(not run) 'q'")}),
		"stdin":       str("from stdin"),
	})
	checked, failures := checkInputs(kindLocal, inputs)
	if len(failures) > 0 {
		t.Fatal(failures)
	}
	id, state, err := doCreate(t, p, localURN, checked, 0)
	if err != nil {
		t.Fatal(err)
	}
	if id == "" {
		t.Error("empty id")
	}
	out, _ := plainString(t, state, "stdout")
	if want := dir + "\n$(not run) 'q'/inherited\nfrom stdin"; out != want {
		t.Errorf("stdout = %q, want %q", out, want)
	}
	if errOut, _ := plainString(t, state, "stderr"); errOut != "oops" {
		t.Errorf("stderr = %q", errOut)
	}
	if len(rec.messages()) == 0 {
		t.Error("nothing logged")
	}

	// Only logging changes: that is an update too, and `update` runs, with the previous
	// output in its environment; its output replaces the stored one.
	news := checked.Copy()
	news["logging"] = str("none")
	state2, err := doUpdate(t, p, localURN, checked, state, news)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := plainString(t, state2, "stdout")
	if out2 != "update saw: "+out {
		t.Errorf("update stdout = %q", out2)
	}
	if errOut, _ := plainString(t, state2, "stderr"); errOut != "" {
		t.Errorf("update stderr = %q, want the new (empty) one", errOut)
	}

	// The interpreter changes: update runs again.
	news2 := news.Copy()
	news2["interpreter"] = resource.NewArrayProperty([]resource.PropertyValue{str("/bin/sh"), str("-eu"), str("-c")})
	state3, err := doUpdate(t, p, localURN, news, state2, news2)
	if err != nil {
		t.Fatal(err)
	}
	out3, _ := plainString(t, state3, "stdout")
	if out3 != "update saw: "+out2 {
		t.Errorf("update stdout = %q", out3)
	}

	if err := doDelete(t, p, localURN, state3, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(marker); err != nil || string(got) != out3 {
		t.Errorf("delete wrote %q (%v), want %q", got, err, out3)
	}
}

// PULUMI_COMMAND_STDOUT/_STDERR: only from a non-empty previous output, never on create, not
// at all with addPreviousOutputInEnv false.
func TestLocalPreviousOutputInEnv(t *testing.T) {
	p, _ := testProvider()
	show := `echo "${PULUMI_COMMAND_STDOUT-unset}/${PULUMI_COMMAND_STDERR-unset}"`
	in := props(map[string]resource.PropertyValue{"create": str(show)})
	_, state, err := doCreate(t, p, localURN, in, 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "unset/unset" {
		t.Errorf("create saw %q", out)
	}
	for _, tc := range []struct {
		name           string
		stdout, stderr string
		addPrev        *bool
		want           string
	}{
		{"both", "o", "e", nil, "o/e"},
		{"empty stdout", "", "e", nil, "unset/e"},
		{"both empty", "", "", nil, "unset/unset"},
		{"disabled", "o", "e", new(bool), "unset/unset"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := in.Copy()
			st["stdout"], st["stderr"] = str(tc.stdout), str(tc.stderr)
			news := in.Copy()
			news["stdin"] = str("changed")
			if tc.addPrev != nil {
				news["addPreviousOutputInEnv"] = resource.NewBoolProperty(*tc.addPrev)
			}
			out, err := doUpdate(t, p, localURN, in, st, news)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := plainString(t, out, "stdout"); v != tc.want {
				t.Errorf("update saw %q, want %q", v, tc.want)
			}
		})
	}
}

func TestLocalInterpreter(t *testing.T) {
	p, _ := testProvider()
	_, state, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		"interpreter": resource.NewArrayProperty([]resource.PropertyValue{str("/bin/sh"), str("-c"), str("echo \"$0|$1\"")}),
		"create":      str("arg-after"),
	}), 0)
	if err != nil {
		t.Fatal(err)
	}
	// interpreter + [create]: sh -c 'echo "$0|$1"' arg-after → $0 is the command.
	if out, _ := plainString(t, state, "stdout"); out != "arg-after|" {
		t.Errorf("stdout = %q", out)
	}
}

func TestLocalExitErrorAndNoCreate(t *testing.T) {
	p, _ := testProvider()
	_, _, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		"create": str("echo partial; echo bad >&2; exit 42"),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "exit status 42") || !strings.Contains(err.Error(), "partial\n") || !strings.Contains(err.Error(), "bad\n") ||
		!strings.Contains(err.Error(), `"echo partial; echo bad >&2; exit 42"`) {
		t.Fatalf("error = %v", err)
	}

	// No create command: nothing runs, empty outputs.
	id, state, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{"delete": str("true")}), 0)
	if err != nil || id == "" {
		t.Fatal(id, err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "" {
		t.Errorf("stdout = %q", out)
	}
	// No delete command: Delete is a no-op.
	if err := doDelete(t, p, localURN, props(map[string]resource.PropertyValue{"create": str("false")}), 0); err != nil {
		t.Fatal(err)
	}
}

// On timeout the interpreter is killed, as upstream's exec.CommandContext does; processes it
// started in the background are not (and the step waits for any that still hold its output).
func TestLocalTimeoutKillsTheInterpreter(t *testing.T) {
	p, _ := testProvider()
	dir := t.TempDir()
	start := time.Now()
	_, _, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		// exec: the killed process is the one holding the output open.
		"create": str("(sleep 2; echo survived > survived) >/dev/null 2>&1 & echo started; exec sleep 30"),
		"dir":    str(dir),
	}), 1)
	if err == nil || !strings.Contains(err.Error(), "killed") || !strings.Contains(err.Error(), "timeout") ||
		!strings.Contains(err.Error(), "started") {
		t.Fatalf("want the interpreter killed at the timeout, got %v", err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("took %v", d)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "survived")); err != nil {
		t.Fatal("the background child should outlive the interpreter, as with upstream")
	}
}

func TestLocalEnvironmentNamesAsGiven(t *testing.T) {
	p, _ := testProvider()
	_, state, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		// (dash passes only identifier names on to its children: read its own environment)
		"create":      str(`tr '\0' '\n' < /proc/$$/environ | grep '^my.var='; echo "$PLAIN"`),
		"environment": obj(map[string]resource.PropertyValue{"my.var": str("1"), "PLAIN": str("two words")}),
	}), 0)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := plainString(t, state, "stdout"); out != "my.var=1\ntwo words" {
		t.Errorf("stdout = %q", out)
	}
}

func TestLocalRejectsAssetPaths(t *testing.T) {
	p, _ := testProvider()
	_, _, err := doCreate(t, p, localURN, props(map[string]resource.PropertyValue{
		"create":     str("true"),
		"assetPaths": resource.NewArrayProperty([]resource.PropertyValue{str("*")}),
	}), 0)
	if err == nil || !strings.Contains(err.Error(), "not supported by this build") {
		t.Fatalf("want unsupported error, got %v", err)
	}
}
