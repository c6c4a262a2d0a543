package main

// Running a command: capturing its output, streaming it to the engine line by line, and
// turning failures into readable errors.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// engineLogger sends messages to the Pulumi engine, attached to a resource.
type engineLogger interface {
	Log(ctx context.Context, sev pulumirpc.LogSeverity, urn, msg string, ephemeral bool)
}

type nopLogger struct{}

func (nopLogger) Log(context.Context, pulumirpc.LogSeverity, string, string, bool) {}

// run is one execution of one of a resource's commands.
type run struct {
	Op      string // create, update or delete: for messages
	URN     string
	Command string
	Env     map[string]string
	Prev    *prevOutputs // previous outputs to pass in the environment, or nil
	Stdin   *string
	Logging string
	// Secret withholds the output from logs and error messages.
	Secret bool
	Log    engineLogger
}

func (r *run) status(ctx context.Context, msg string) {
	r.Log.Log(ctx, pulumirpc.LogSeverity_INFO, r.URN, msg, true)
}

func (r *run) warn(ctx context.Context, msg string) {
	r.Log.Log(ctx, pulumirpc.LogSeverity_WARNING, r.URN, msg, false)
}

// execute runs r as described by spec (remote over SSH or local) and returns the captured
// stdout and stderr, each without its trailing newline.
func execute(ctx context.Context, spec *commandSpec, r *run) (stdout, stderr string, err error) {
	out := newCapture(ctx, r)
	switch spec.Kind {
	case kindRemote:
		err = runRemote(ctx, spec.Conn, r, out)
	case kindLocal:
		err = runLocal(ctx, spec, r, out)
	default:
		err = fmt.Errorf("unknown command kind %q", spec.Kind)
	}
	out.close()
	stdout = strings.TrimSuffix(out.stdout.String(), "\n")
	stderr = strings.TrimSuffix(out.stderr.String(), "\n")
	if err != nil {
		return stdout, stderr, r.failure(ctx, err, stdout, stderr)
	}
	return stdout, stderr, nil
}

// exitError is a command that ran and ended unsuccessfully.
type exitError struct {
	status int    // exit status, or -1 if none
	signal string // signal that ended it, if any
}

func (e *exitError) Error() string {
	switch {
	case e.signal != "":
		return "command was killed by signal " + e.signal
	case e.status < 0:
		return "command ended without reporting an exit status"
	}
	return fmt.Sprintf("command exited with status %d", e.status)
}

const tailLines = 40

// failure turns a run error into the message shown to the user.
func (r *run) failure(ctx context.Context, err error, stdout, stderr string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Op)
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		fmt.Fprintf(&b, "timed out: the operation's timeout expired (%v)", err)
	case errors.Is(ctx.Err(), context.Canceled):
		fmt.Fprintf(&b, "cancelled (%v)", err)
	default:
		b.WriteString(err.Error())
	}
	var ee *exitError
	if !errors.As(err, &ee) && ctx.Err() == nil {
		// Did not get as far as running the command: no output to show.
		return errors.New(b.String())
	}
	if r.Secret {
		b.WriteString("\n(output withheld: the command, its stdin or its environment is secret)")
		return errors.New(b.String())
	}
	for _, s := range []struct{ name, text string }{{"stdout", stdout}, {"stderr", stderr}} {
		if s.text == "" {
			fmt.Fprintf(&b, "\n--- %s: (empty)", s.name)
			continue
		}
		lines, cut := tail(s.text, tailLines)
		if cut {
			fmt.Fprintf(&b, "\n--- %s (last %d lines):\n%s", s.name, tailLines, lines)
		} else {
			fmt.Fprintf(&b, "\n--- %s:\n%s", s.name, lines)
		}
	}
	return errors.New(b.String())
}

// tail returns the last n lines of s and whether anything was cut. Very long lines are shortened.
func tail(s string, n int) (string, bool) {
	lines := strings.Split(s, "\n")
	cut := false
	if len(lines) > n {
		lines = lines[len(lines)-n:]
		cut = true
	}
	for i, l := range lines {
		if len(l) > 2000 {
			lines[i] = l[:2000] + "…"
		}
	}
	return strings.Join(lines, "\n"), cut
}

// capture collects a command's stdout and stderr and streams complete lines to the engine.
type capture struct {
	stdout, stderr bytes.Buffer
	outW, errW     *lineWriter
	lines          chan string
	done           chan struct{}
}

func newCapture(ctx context.Context, r *run) *capture {
	c := &capture{lines: make(chan string, 256), done: make(chan struct{})}
	logOut := !r.Secret && logsStdout(r.Logging)
	logErr := !r.Secret && logsStderr(r.Logging)
	c.outW = &lineWriter{buf: &c.stdout, lines: c.lines, stream: logOut}
	c.errW = &lineWriter{buf: &c.stderr, lines: c.lines, stream: logErr}
	if r.Secret && r.Logging != "none" {
		r.status(ctx, "output not shown: the command, its stdin or its environment is secret")
	}
	go func() {
		defer close(c.done)
		for line := range c.lines {
			// Logging goes on even if the operation is cancelled: use a fresh, bounded context.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			r.Log.Log(lctx, pulumirpc.LogSeverity_INFO, r.URN, line, true)
			cancel()
		}
	}()
	return c
}

// close flushes partial lines and waits for the logger to drain.
func (c *capture) close() {
	c.outW.flush()
	c.errW.flush()
	close(c.lines)
	<-c.done
}

// lineWriter appends to buf and, when stream is set, sends each complete line to lines.
type lineWriter struct {
	mu      sync.Mutex
	buf     *bytes.Buffer
	lines   chan<- string
	stream  bool
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.stream {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.lines <- strings.TrimSuffix(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64*1024 {
		// A very long line without a newline: log what we have.
		w.lines <- string(w.partial)
		w.partial = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stream && len(w.partial) > 0 {
		w.lines <- string(w.partial)
	}
	w.partial = nil
}
