package main

// Passing environment variables to a remote command without relying on the SSH server's
// AcceptEnv: the command is prefixed with POSIX `export` statements.

import (
	"fmt"
	"strings"
)

// shellQuote returns s as a single POSIX shell word: wrapped in single quotes, with each
// single quote written as '\” (close, escaped quote, reopen). Inside single quotes nothing
// else is special, including newlines, $, backquotes and backslashes.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exportPrefix renders env as `export NAME='value';` lines, sorted by name for stable output.
func exportPrefix(env map[string]string) (string, error) {
	var b strings.Builder
	for _, k := range sortedKeys(env) {
		if !shellIdentifier.MatchString(k) {
			return "", fmt.Errorf("environment variable name %q is not a valid shell identifier", k)
		}
		v := env[k]
		if strings.ContainsRune(v, 0) {
			return "", fmt.Errorf("environment variable %q: value contains a NUL byte", k)
		}
		fmt.Fprintf(&b, "export %s=%s;\n", k, shellQuote(v))
	}
	return b.String(), nil
}

// maxRemoteScript bounds the script sent in the SSH exec request: the remote shell receives it
// as one argument, and Linux limits a single argument to 128 KiB.
const maxRemoteScript = 120 * 1024

// remoteScript builds the text run by the remote login shell: the user's environment, then the
// previous outputs (when there are any to pass), then the command itself. If the previous
// outputs would make the script too long for the remote shell, they are left out and the
// returned note says so.
func remoteScript(command string, env map[string]string, prev *prevOutputs) (script, note string, err error) {
	userEnv, err := exportPrefix(env)
	if err != nil {
		return "", "", err
	}
	prevEnv := ""
	if prev != nil {
		prevEnv, err = exportPrefix(prev.env())
		if err != nil {
			return "", "", err
		}
	}
	script = userEnv + prevEnv + command
	if len(script) > maxRemoteScript && prevEnv != "" {
		script = userEnv + command
		note = fmt.Sprintf("%s and %s were not set: the previous output is too large to pass to the remote shell",
			envPrevStdout, envPrevStderr)
	}
	if len(script) > maxRemoteScript {
		return "", "", fmt.Errorf("the command and its environment come to %d bytes, more than the %d the "+
			"remote shell can take in one argument; copy large content to the host and read it there instead",
			len(script), maxRemoteScript)
	}
	return script, note, nil
}

// prevOutputs are the stdout and stderr of an earlier run, passed to the next command in
// PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR.
type prevOutputs struct {
	Stdout string
	Stderr string
}

func (p *prevOutputs) env() map[string]string {
	return map[string]string{envPrevStdout: p.Stdout, envPrevStderr: p.Stderr}
}
