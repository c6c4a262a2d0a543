package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestShellQuoteRoundTripsThroughSh(t *testing.T) {
	dir := t.TempDir()
	for _, v := range hostileValues {
		cmd := exec.Command("/bin/sh", "-c", "printf '%s' "+shellQuote(v))
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sh failed for %q: %v", v, err)
		}
		if string(out) != v {
			t.Errorf("round trip of %q gave %q", v, out)
		}
	}
	assertNoPwned(t, dir)
}

func TestExportPrefixWithHostileValues(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{}
	for i, v := range hostileValues {
		env["V"+string(rune('A'+i))] = v
	}
	prefix, err := exportPrefix(env)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range env {
		// The exported variable must reach a child process unchanged.
		cmd := exec.Command("/bin/sh", "-c", prefix+`/usr/bin/env printenv `+name+` > out; true`)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", name, err, out)
		}
		got, err := os.ReadFile(filepath.Join(dir, "out"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want+"\n" {
			t.Errorf("%s: got %q, want %q", name, got, want)
		}
	}
	assertNoPwned(t, dir)
	if !strings.Contains(prefix, "export VA=''\\''; rm -rf /';\n") {
		t.Errorf("single quote not escaped as expected in %q", prefix)
	}
}

func TestExportPrefixRejectsBadNames(t *testing.T) {
	for _, name := range []string{"1ABC", "A-B", "A B", "A;B", "$(x)", "", "A=B", "Ü"} {
		if _, err := exportPrefix(map[string]string{name: "v"}); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := exportPrefix(map[string]string{"OK": "nul\x00byte"}); err == nil {
		t.Error("NUL byte accepted")
	}
	if _, err := exportPrefix(map[string]string{"_ok_1": "v", "Z9": "v"}); err != nil {
		t.Errorf("valid names rejected: %v", err)
	}
}

func TestRemoteScriptOrderAndSizeLimit(t *testing.T) {
	script, note, err := remoteScript("run-me", map[string]string{"B": "2", "A": "1"}, &prevOutputs{Stdout: "o", Stderr: "e"})
	if err != nil || note != "" {
		t.Fatal(err, note)
	}
	want := "export A='1';\nexport B='2';\nexport PULUMI_COMMAND_STDERR='e';\nexport PULUMI_COMMAND_STDOUT='o';\nrun-me"
	if script != want {
		t.Fatalf("script =\n%s\nwant\n%s", script, want)
	}
	// Previous output too large for one argument: dropped with a note, the command still runs.
	big := strings.Repeat("x", maxRemoteScript+1)
	script, note, err = remoteScript("run-me", nil, &prevOutputs{Stdout: big})
	if err != nil || note == "" || strings.Contains(script, "PULUMI_COMMAND") {
		t.Fatalf("large previous output: err=%v note=%q", err, note)
	}
	// User content too large: a clear error.
	if _, _, err := remoteScript(big, nil, nil); err == nil || !strings.Contains(err.Error(), "bytes") {
		t.Fatalf("want size error, got %v", err)
	}
}

func assertNoPwned(t *testing.T, dir string) {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(dir, "PWNED*"))
	if len(matches) > 0 {
		t.Fatalf("command substitution ran: %v", matches)
	}
}
