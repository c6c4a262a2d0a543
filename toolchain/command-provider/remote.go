package main

// Remote commands: SSH connection (with retries and an optional jump host) and execution.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// hostKeyMismatch is reported when the server's host key is not connection.hostKey. It is not
// retried: a wrong key will not become right by trying again.
type hostKeyMismatch struct {
	want, got string // SHA256 fingerprints
}

func (e *hostKeyMismatch) Error() string {
	return fmt.Sprintf("host key mismatch: the server presented %s but hostKey is %s", e.got, e.want)
}

// clientConfig is an ssh.ClientConfig plus what must be released after connecting.
type clientConfig struct {
	*ssh.ClientConfig
	mismatch atomic.Pointer[hostKeyMismatch]
	closers  []func()
}

func (c *clientConfig) release() {
	for _, f := range c.closers {
		f()
	}
}

// newClientConfig builds the SSH client settings for one hop. path names the connection in
// error messages ("connection" or "connection.proxy"). No error text includes a credential.
func newClientConfig(c *connSpec, path string) (*clientConfig, error) {
	cc := &clientConfig{ClientConfig: &ssh.ClientConfig{User: c.User}}

	if c.HostKey != nil && strings.TrimSpace(*c.HostKey) != "" {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, fmt.Errorf("%s.hostKey is not a public key in authorized_keys format "+
				"(like \"ssh-ed25519 AAAA...\"): %v", path, err)
		}
		wantBytes := want.Marshal()
		cc.HostKeyCallback = func(_ string, _ net.Addr, got ssh.PublicKey) error {
			if string(got.Marshal()) == string(wantBytes) {
				return nil
			}
			e := &hostKeyMismatch{want: ssh.FingerprintSHA256(want), got: ssh.FingerprintSHA256(got)}
			cc.mismatch.Store(e)
			return e
		}
		if want.Type() == ssh.KeyAlgoRSA {
			cc.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		} else {
			cc.HostKeyAlgorithms = []string{want.Type()}
		}
	} else {
		// No hostKey given: accept whatever the server presents (as upstream does).
		cc.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec
	}

	if c.PrivateKey != nil && *c.PrivateKey != "" {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil && *c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, fmt.Errorf("%s.privateKey is encrypted: set %s.privateKeyPassword", path, path)
		case err != nil:
			return nil, fmt.Errorf("%s.privateKey could not be read: %v", path, err)
		}
		cc.Auth = append(cc.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != nil && *c.Password != "" {
		pw := *c.Password
		cc.Auth = append(cc.Auth, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	sock := ""
	if c.AgentSocketPath != nil && *c.AgentSocketPath != "" {
		sock = *c.AgentSocketPath
	} else if len(cc.Auth) == 0 {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, fmt.Errorf("%s: could not reach the SSH agent: %v", path, err)
		}
		cc.closers = append(cc.closers, func() { conn.Close() })
		cc.Auth = append(cc.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	if len(cc.Auth) == 0 {
		return nil, fmt.Errorf("%s has no way to authenticate: set privateKey, password or agentSocketPath", path)
	}
	return cc, nil
}

// Backoff between dial attempts.
var (
	dialBackoffFirst = 500 * time.Millisecond
	dialBackoffMax   = 5 * time.Second
)

// withRetry calls attempt until it succeeds, it fails permanently, limit attempts have failed
// (limit -1: no limit), or ctx ends.
func withRetry[T any](ctx context.Context, what string, limit int, status func(string),
	attempt func(context.Context) (T, error)) (T, error) {
	var zero T
	maxAttempts := limit
	if maxAttempts == 0 {
		maxAttempts = 1
	}
	delay := dialBackoffFirst
	for n := 1; ; n++ {
		v, err := attempt(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return zero, fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		}
		var mismatch *hostKeyMismatch
		if errors.As(err, &mismatch) {
			return zero, fmt.Errorf("%s: %w", what, mismatch)
		}
		if maxAttempts > 0 && n >= maxAttempts {
			return zero, fmt.Errorf("%s failed after %d attempt(s): %w", what, n, err)
		}
		limitText := "unlimited"
		if maxAttempts > 0 {
			limitText = strconv.Itoa(maxAttempts)
		}
		status(fmt.Sprintf("%s attempt %d/%s failed; retrying in %v", what, n, limitText, delay))
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*3/2, dialBackoffMax)
	}
}

// handshake opens a transport with dial and runs the SSH handshake over it, both within
// perDial seconds (0: no limit of its own).
func handshake(ctx context.Context, perDial int, addr string, cc *clientConfig,
	dial func(context.Context) (net.Conn, error)) (*ssh.Client, error) {
	actx := ctx
	if perDial > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, time.Duration(perDial)*time.Second)
		defer cancel()
	}
	conn, err := dial(actx)
	if err != nil {
		if ctx.Err() == nil && actx.Err() != nil {
			return nil, fmt.Errorf("no connection within %ds (perDialTimeout): %v", perDial, err)
		}
		return nil, err
	}
	stop := context.AfterFunc(actx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, cc.ClientConfig)
	if !stop() {
		// The deadline or a cancellation closed the connection mid-handshake.
		if err == nil {
			c.Close()
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("SSH handshake did not finish within %ds (perDialTimeout)", perDial)
	}
	if err != nil {
		conn.Close()
		if m := cc.mismatch.Load(); m != nil {
			return nil, m
		}
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// sshClient is a connection to the target, and to the jump host it goes through, if any.
type sshClient struct {
	*ssh.Client
	proxy *ssh.Client
}

func (c *sshClient) Close() {
	c.Client.Close()
	if c.proxy != nil {
		c.proxy.Close()
	}
}

func tcpDialer(addr string) func(context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// dialSSH connects to c's host, through c.Proxy when set, retrying as configured.
func dialSSH(ctx context.Context, c *connSpec, status func(string)) (*sshClient, error) {
	cc, err := newClientConfig(c, pConnection)
	if err != nil {
		return nil, err
	}
	defer cc.release()
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))

	if c.Proxy == nil {
		client, err := withRetry(ctx, "SSH connection", c.DialErrorLimit, status,
			func(ctx context.Context) (*ssh.Client, error) {
				return handshake(ctx, c.PerDialTimeout, addr, cc, tcpDialer(addr))
			})
		if err != nil {
			return nil, err
		}
		return &sshClient{Client: client}, nil
	}

	pc, err := newClientConfig(c.Proxy, pConnection+".proxy")
	if err != nil {
		return nil, err
	}
	defer pc.release()
	proxyAddr := net.JoinHostPort(c.Proxy.Host, strconv.Itoa(c.Proxy.Port))
	proxy, err := withRetry(ctx, "SSH connection to the proxy", c.Proxy.DialErrorLimit, status,
		func(ctx context.Context) (*ssh.Client, error) {
			return handshake(ctx, c.Proxy.PerDialTimeout, proxyAddr, pc, tcpDialer(proxyAddr))
		})
	if err != nil {
		return nil, err
	}
	client, err := withRetry(ctx, "SSH connection through the proxy", c.DialErrorLimit, status,
		func(ctx context.Context) (*ssh.Client, error) {
			return handshake(ctx, c.PerDialTimeout, addr, cc, func(ctx context.Context) (net.Conn, error) {
				return proxy.DialContext(ctx, "tcp", addr)
			})
		})
	if err != nil {
		proxy.Close()
		return nil, err
	}
	return &sshClient{Client: client, proxy: proxy}, nil
}

// runRemote runs r's command in one SSH session, through the remote user's login shell.
func runRemote(ctx context.Context, c *connSpec, r *run, out *capture) error {
	script, note, err := remoteScript(r.Command, r.Env, r.Prev)
	if err != nil {
		return err
	}
	if note != "" {
		r.warn(ctx, note)
	}
	client, err := dialSSH(ctx, c, func(msg string) { r.status(ctx, msg) })
	if err != nil {
		return err
	}
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("could not open an SSH session: %w", err)
	}
	defer sess.Close()
	if r.Stdin != nil && *r.Stdin != "" {
		sess.Stdin = strings.NewReader(*r.Stdin)
	}
	sess.Stdout = out.outW
	sess.Stderr = out.errW

	done := make(chan error, 1)
	go func() { done <- sess.Run(script) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		client.Close()
		<-done
		return ctx.Err()
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &ee):
		if sig := ee.Signal(); sig != "" {
			return &exitError{status: -1, signal: sig}
		}
		return &exitError{status: ee.ExitStatus()}
	case errors.As(err, &missing):
		return &exitError{status: -1}
	case err != nil:
		return fmt.Errorf("SSH session failed: %w", err)
	}
	return nil
}
