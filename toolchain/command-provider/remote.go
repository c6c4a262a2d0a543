package main

// Remote commands, as upstream 1.2.1 runs them: one new SSH connection (optionally through a
// jump host) and one session per run; the resource's environment and the previous outputs are
// sent as SSH "env" requests; the command string goes in the exec request, so the remote login
// shell runs it.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// hostKeyMismatch is reported when the server's host key is not connection.hostKey. Like any
// other dial error it is retried (upstream does not tell it apart).
type hostKeyMismatch struct {
	want, got string // SHA256 fingerprints
}

func (e *hostKeyMismatch) Error() string {
	return fmt.Sprintf("host key mismatch: the server presented %s but hostKey is %s", e.got, e.want)
}

// newClientConfig builds the SSH client settings for one hop. path names the connection in
// error messages ("connection" or "connection.proxy"); no message includes a credential. The
// returned release func closes the agent connection, if one was opened.
func newClientConfig(c *connSpec, path string) (*ssh.ClientConfig, func(), error) {
	cc := &ssh.ClientConfig{User: c.User, Timeout: time.Duration(c.PerDialTimeout) * time.Second}
	release := func() {}

	if c.HostKey != nil {
		want, _, _, _, err := ssh.ParseAuthorizedKey([]byte(*c.HostKey))
		if err != nil {
			return nil, nil, fmt.Errorf("%s.hostKey is not a public key in authorized_keys format "+
				"(like \"ssh-ed25519 AAAA...\"): %v", path, err)
		}
		wantBytes := want.Marshal()
		cc.HostKeyCallback = func(_ string, _ net.Addr, got ssh.PublicKey) error {
			if string(got.Marshal()) == string(wantBytes) {
				return nil
			}
			return &hostKeyMismatch{want: ssh.FingerprintSHA256(want), got: ssh.FingerprintSHA256(got)}
		}
		// Only the pinned key's own algorithm is offered (for an RSA key that is "ssh-rsa",
		// which servers that refuse SHA-1 signatures do not accept; so it is upstream).
		cc.HostKeyAlgorithms = []string{want.Type()}
	} else {
		// No hostKey given: accept whatever the server presents (as upstream does).
		cc.HostKeyCallback = ssh.InsecureIgnoreHostKey() //nolint:gosec
	}

	if c.PrivateKey != nil {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != nil {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(*c.PrivateKey), []byte(*c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(*c.PrivateKey))
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, nil, fmt.Errorf("%s.privateKey is encrypted: set %s.privateKeyPassword", path, path)
		case err != nil:
			return nil, nil, fmt.Errorf("%s.privateKey could not be read: %v", path, err)
		}
		cc.Auth = append(cc.Auth, ssh.PublicKeys(signer))
	}
	if c.Password != nil {
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
	// The agent is used in addition to a key or password: agentSocketPath when given, else
	// SSH_AUTH_SOCK when that is set. A socket that cannot be reached fails the run.
	var sock *string
	if c.AgentSocketPath != nil {
		sock = c.AgentSocketPath
	} else if env := os.Getenv("SSH_AUTH_SOCK"); env != "" {
		sock = &env
	}
	if sock != nil {
		conn, err := net.Dial("unix", *sock)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: could not reach the SSH agent: %v", path, err)
		}
		release = func() { conn.Close() }
		cc.Auth = append(cc.Auth, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	return cc, release, nil
}

// Waits between dial attempts: they start at dialBackoffFirst and grow by half each time, up
// to dialBackoffMax (upstream uses the Pulumi SDK's retry defaults: 100 ms, ×1.5, 5 s).
var (
	dialBackoffFirst = 100 * time.Millisecond
	dialBackoffMax   = 5 * time.Second
)

const dialBackoffFactor = 1.5

// withRetry calls attempt until it succeeds or has failed more than limit times (limit -1, or
// any negative value: no limit): dialErrorLimit 10 means up to 11 attempts, 0 means one. ctx is
// looked at only between attempts: an attempt itself is not interrupted.
func withRetry[T any](ctx context.Context, what string, limit int, status func(string),
	attempt func() (T, error)) (T, error) {
	var zero T
	delay := dialBackoffFirst
	for n := 1; ; n++ {
		v, err := attempt()
		if err == nil {
			return v, nil
		}
		if limit > -1 && n > limit {
			return zero, fmt.Errorf("%s failed %d times (dialErrorLimit %d): %w", what, n, limit, err)
		}
		limitText := "unlimited"
		if limit > -1 {
			limitText = strconv.Itoa(limit)
		}
		status(fmt.Sprintf("%s: attempt %d failed (dialErrorLimit %s); trying again", what, n, limitText))
		select {
		case <-ctx.Done():
			return zero, fmt.Errorf("%s: gave up: %w (last error: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(time.Duration(float64(delay)*dialBackoffFactor), dialBackoffMax)
	}
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

func endpoint(c *connSpec) string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// dialSSH connects to c's host, through c.Proxy when set, retrying as configured. Each attempt
// is a TCP connect bounded by perDialTimeout (0: no bound) followed by the SSH handshake and
// authentication; any failure of these counts against dialErrorLimit.
func dialSSH(ctx context.Context, c *connSpec, status func(string)) (*sshClient, error) {
	cc, release, err := newClientConfig(c, pConnection)
	if err != nil {
		return nil, err
	}
	defer release()
	addr := endpoint(c)

	if c.Proxy == nil {
		client, err := withRetry(ctx, "SSH connection", c.DialErrorLimit, status, func() (*ssh.Client, error) {
			return ssh.Dial("tcp", addr, cc)
		})
		if err != nil {
			return nil, err
		}
		return &sshClient{Client: client}, nil
	}

	// Through a jump host: connect to it; from there open a TCP channel to the target (no
	// perDialTimeout applies to this step); then run the handshake over that channel. The
	// second and third steps each retry up to the target's dialErrorLimit, the third on the
	// same channel, as upstream does.
	pc, releaseProxy, err := newClientConfig(c.Proxy, pConnection+".proxy")
	if err != nil {
		return nil, err
	}
	defer releaseProxy()
	proxy, err := withRetry(ctx, "SSH connection to the proxy", c.Proxy.DialErrorLimit, status,
		func() (*ssh.Client, error) { return ssh.Dial("tcp", endpoint(c.Proxy), pc) })
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	conn, err := withRetry(ctx, "TCP connection from the proxy to the host", c.DialErrorLimit, status,
		func() (net.Conn, error) { return proxy.Dial("tcp", addr) })
	if err != nil {
		proxy.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	type handshake struct {
		conn  ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
	}
	h, err := withRetry(ctx, "SSH connection through the proxy", c.DialErrorLimit, status,
		func() (handshake, error) {
			sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cc)
			return handshake{sc, chans, reqs}, err
		})
	if err != nil {
		conn.Close()
		proxy.Close()
		return nil, fmt.Errorf("proxy: %w", err)
	}
	return &sshClient{Client: ssh.NewClient(h.conn, h.chans, h.reqs), proxy: proxy}, nil
}

// refusedEnvNote explains a refused env request.
func refusedEnvNote(name string) string {
	return fmt.Sprintf("The SSH server did not accept the environment variable %s. sshd takes only the names "+
		"its AcceptEnv setting lists (Debian's default: LANG LC_*); add the name there, or set the variable "+
		"inside the command instead (e.g. NAME=value command).", name)
}

// runRemote runs r's command in one SSH session. Once the command has started it runs to its
// end: neither the operation's timeout nor a cancellation stops it (upstream's session does not
// watch them either); they only end the dial retries.
func runRemote(ctx context.Context, c *connSpec, r *run, out *capture) error {
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

	// Each environment entry is an env request; a refused one fails the run before the
	// command starts.
	for _, k := range sortedKeys(r.Env) {
		if err := sess.Setenv(k, r.Env[k]); err != nil {
			r.error(ctx, refusedEnvNote(k))
			return fmt.Errorf("could not set the environment variable %q on the remote host: %w", k, err)
		}
	}
	// The previous outputs are sent when not empty; a refusal only warns.
	if r.Prev != nil {
		for _, e := range []struct{ name, value string }{
			{envPrevStdout, r.Prev.Stdout}, {envPrevStderr, r.Prev.Stderr},
		} {
			if e.value == "" {
				continue
			}
			if err := sess.Setenv(e.name, e.value); err != nil {
				r.warn(ctx, refusedEnvNote(e.name)+" The command runs without it.")
			}
		}
	}

	if r.Stdin != nil && *r.Stdin != "" {
		sess.Stdin = strings.NewReader(*r.Stdin)
	}
	sess.Stdout = out.outW
	sess.Stderr = out.errW
	if err := sess.Run(r.Command); err != nil {
		return &ranError{err}
	}
	return nil
}
