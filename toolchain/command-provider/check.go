package main

// Check: validate inputs and fill in the connection defaults. Values that are not known yet
// (during a preview) are left alone and validated when they become known.
//
// Like upstream (whose Check only decodes the inputs into their Go types), this rejects values of
// the wrong type and a missing host or connection, nothing more: an empty host, port 70000, an
// unknown logging value or an odd environment name pass here and meet their fate when the
// command runs.

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

type checkFailure struct {
	Property string
	Reason   string
}

func checkInputs(kind resourceKind, news resource.PropertyMap) (resource.PropertyMap, []checkFailure) {
	out := news.Copy()
	var failures []checkFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, checkFailure{Property: prop, Reason: fmt.Sprintf(format, args...)})
	}

	for _, k := range []string{pCreate, pUpdate, pDelete, pStdin, pDir} {
		if f := get(news, k); f.present && !f.unknown && !f.v.IsString() {
			fail(k, "%s must be a string, got %s", k, f.v.TypeString())
		}
	}
	if f := get(news, pLogging); f.present && !f.unknown && !f.v.IsString() {
		fail(pLogging, "logging must be a string, got %s", f.v.TypeString())
	}
	if f := get(news, pAddPrevious); f.present && !f.unknown && !f.v.IsBool() {
		fail(pAddPrevious, "%s must be a boolean, got %s", pAddPrevious, f.v.TypeString())
	}
	if f := get(news, pEnvironment); f.present && !f.unknown {
		if !f.v.IsObject() {
			fail(pEnvironment, "environment must be a map of strings, got %s", f.v.TypeString())
		} else {
			for k, v := range f.v.ObjectValue() {
				inner, _, unknown := peel(v)
				if !unknown && !inner.IsNull() && !inner.IsString() {
					fail(pEnvironment+"."+string(k), "environment.%s must be a string, got %s", k, inner.TypeString())
				}
			}
		}
	}
	if f := get(news, pTriggers); f.present && !f.unknown && !f.v.IsArray() {
		fail(pTriggers, "triggers must be an array, got %s", f.v.TypeString())
	}

	switch kind {
	case kindLocal:
		for _, k := range []string{pAssetPaths, pArchivePaths} {
			if !isAbsent(news, k) {
				fail(k, "%s %s; collect files with a separate step instead", k, unsupportedNote)
			}
		}
		if f := get(news, pInterpreter); f.present && !f.unknown {
			if _, err := f.strings(pInterpreter); err != nil && !f.v.ContainsUnknowns() {
				fail(pInterpreter, "%s", err.Error())
			}
		}
	case kindRemote:
		raw, ok := news[pConnection]
		f := get(news, pConnection)
		switch {
		case !ok || !f.present:
			fail(pConnection, "missing required property %q", pConnection)
		case f.unknown:
			// Known later; keep it (secret) as it is.
			out[pConnection] = ensureSecret(raw)
		case !f.v.IsObject():
			fail(pConnection, "connection must be an object, got %s", f.v.TypeString())
		default:
			conn, connFailures := checkConnection(f.v.ObjectValue(), pConnection, true)
			failures = append(failures, connFailures...)
			// The connection carries credentials: it is always kept secret.
			out[pConnection] = resource.MakeSecret(resource.NewObjectProperty(conn))
		}
	}
	return out, failures
}

func checkConnection(in resource.PropertyMap, path string, allowProxy bool) (resource.PropertyMap, []checkFailure) {
	out := in.Copy()
	var failures []checkFailure
	fail := func(prop, format string, args ...any) {
		failures = append(failures, checkFailure{Property: path + "." + prop, Reason: fmt.Sprintf(format, args...)})
	}
	setDefault := func(k string, v resource.PropertyValue) {
		if isAbsent(in, k) {
			out[resource.PropertyKey(k)] = v
		}
	}
	setDefault("port", resource.NewNumberProperty(defaultPort))
	setDefault("user", resource.NewStringProperty(defaultUser))
	setDefault("dialErrorLimit", resource.NewNumberProperty(defaultDialErrorLimit))
	setDefault("perDialTimeout", resource.NewNumberProperty(defaultPerDialTimeout))

	host := get(in, "host")
	switch {
	case !host.present:
		fail("host", "missing required property %q: the address of the machine to connect to", path+".host")
	case host.unknown:
	case !host.v.IsString():
		fail("host", "%s.host must be a string, got %s", path, host.v.TypeString())
	}
	for _, k := range []string{"user", "password", "privateKey", "privateKeyPassword", "agentSocketPath", "hostKey"} {
		if f := get(in, k); f.present && !f.unknown && !f.v.IsString() {
			fail(k, "%s.%s must be a string, got %s", path, k, f.v.TypeString())
		}
	}
	// Credentials are secret in upstream's schema, also inside the (secret) connection; keeping
	// them so means a credential's secrecy never shows up as a change.
	for _, k := range []string{"password", "privateKey", "privateKeyPassword"} {
		if v, ok := in[resource.PropertyKey(k)]; ok && !isNullValue(v) {
			out[resource.PropertyKey(k)] = ensureSecret(v)
		}
	}
	if f := get(in, "port"); f.present && !f.unknown && !f.v.IsNumber() {
		fail("port", "%s.port must be a number, got %s", path, f.v.TypeString())
	}
	for _, k := range []string{"dialErrorLimit", "perDialTimeout"} {
		if f := get(in, k); f.present && !f.unknown {
			if _, err := f.integer(path + "." + k); err != nil {
				fail(k, "%s", err.Error())
			}
		}
	}

	if f := get(in, "proxy"); f.present {
		raw := in["proxy"]
		switch {
		case !allowProxy:
			fail("proxy", "a proxy connection cannot itself have a proxy")
		case f.unknown:
		case !f.v.IsObject():
			fail("proxy", "%s.proxy must be an object, got %s", path, f.v.TypeString())
		default:
			proxy, proxyFailures := checkConnection(f.v.ObjectValue(), path+".proxy", false)
			failures = append(failures, proxyFailures...)
			var v resource.PropertyValue = resource.NewObjectProperty(proxy)
			if _, secret, _ := peel(raw); secret {
				v = resource.MakeSecret(v)
			}
			out["proxy"] = v
		}
	}
	return out, failures
}

// ensureSecret wraps v in a secret unless it already is one.
func ensureSecret(v resource.PropertyValue) resource.PropertyValue {
	if v.IsSecret() {
		return v
	}
	return resource.MakeSecret(v)
}
