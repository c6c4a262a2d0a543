package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// runLocal runs the command on this machine as upstream does: interpreter... command, in dir
// (default: the provider's working directory), with the provider's environment plus the
// resource's and the previous outputs, and stdin. When the operation's timeout expires or the
// engine cancels, the interpreter process (not its children) is killed.
func runLocal(ctx context.Context, spec *commandSpec, r *run, out *capture) error {
	interp := spec.Interpreter
	if len(interp) == 0 {
		interp = defaultInterpreter
	}
	args := append(append([]string{}, interp[1:]...), r.Command)
	cmd := exec.CommandContext(ctx, interp[0], args...) //nolint:gosec // running the user's command is the point
	if spec.Dir != nil {
		cmd.Dir = *spec.Dir
	}
	env := os.Environ()
	for _, k := range sortedKeys(r.Env) {
		env = append(env, k+"="+r.Env[k])
	}
	if r.Prev != nil {
		if r.Prev.Stdout != "" {
			env = append(env, envPrevStdout+"="+r.Prev.Stdout)
		}
		if r.Prev.Stderr != "" {
			env = append(env, envPrevStderr+"="+r.Prev.Stderr)
		}
	}
	cmd.Env = env // later entries win over earlier ones with the same name
	if r.Stdin != nil && *r.Stdin != "" {
		cmd.Stdin = strings.NewReader(*r.Stdin)
	}
	cmd.Stdout = out.outW
	cmd.Stderr = out.errW

	err := cmd.Run()
	if err == nil {
		return nil
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("%w (the operation's timeout expired)", err)
	} else if ctx.Err() != nil {
		err = fmt.Errorf("%w (the operation was cancelled)", err)
	}
	return &ranError{err}
}
