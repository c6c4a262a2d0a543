package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// runLocal runs the command on this machine: interpreter... command, in dir, with the
// provider's environment plus the resource's, and stdin.
func runLocal(ctx context.Context, spec *commandSpec, r *run, out *capture) error {
	interp := spec.Interpreter
	if len(interp) == 0 {
		interp = defaultInterpreter
	}
	args := append(append([]string{}, interp[1:]...), r.Command)
	cmd := exec.CommandContext(ctx, interp[0], args...)
	if spec.Dir != nil && *spec.Dir != "" {
		cmd.Dir = *spec.Dir
	}
	env := os.Environ()
	for _, k := range sortedKeys(r.Env) {
		env = append(env, k+"="+r.Env[k])
	}
	if r.Prev != nil {
		for k, v := range r.Prev.env() {
			env = append(env, k+"="+v)
		}
	}
	cmd.Env = env // later entries win over earlier ones with the same name
	if r.Stdin != nil && *r.Stdin != "" {
		cmd.Stdin = strings.NewReader(*r.Stdin)
	}
	cmd.Stdout = out.outW
	cmd.Stderr = out.errW
	// Run in its own process group so that cancelling kills the whole tree, not just the shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second

	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &exitError{status: -1, signal: ws.Signal().String()}
		}
		return &exitError{status: ee.ExitCode()}
	}
	return err
}
