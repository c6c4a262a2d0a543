package main

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func checkVia(t *testing.T, urn string, news resource.PropertyMap) (resource.PropertyMap, []*pulumirpc.CheckFailure) {
	t.Helper()
	p, _ := testProvider()
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: toStruct(t, news)})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return fromStruct(t, resp.GetInputs()), resp.GetFailures()
}

func TestCheckAppliesConnectionDefaults(t *testing.T) {
	news := props(map[string]resource.PropertyValue{
		"connection": secret(obj(map[string]resource.PropertyValue{
			"host":  str("10.0.0.5"),
			"proxy": obj(map[string]resource.PropertyValue{"host": str("bastion"), "port": num(2222)}),
		})),
		"create": str("true"),
	})
	out, failures := checkVia(t, remoteURN, news)
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	c := out["connection"]
	if !c.IsSecret() {
		t.Fatalf("connection lost its secrecy: %v", c)
	}
	conn := c.SecretValue().Element.ObjectValue()
	want := map[string]any{"host": "10.0.0.5", "port": 22.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0}
	for k, v := range want {
		if got := conn[resource.PropertyKey(k)].V; got != v {
			t.Errorf("connection.%s = %v, want %v", k, got, v)
		}
	}
	proxy := conn["proxy"].ObjectValue()
	wantProxy := map[string]any{"host": "bastion", "port": 2222.0, "user": "root", "dialErrorLimit": 10.0, "perDialTimeout": 15.0}
	for k, v := range wantProxy {
		if got := proxy[resource.PropertyKey(k)].V; got != v {
			t.Errorf("connection.proxy.%s = %v, want %v", k, got, v)
		}
	}
	if out["create"].StringValue() != "true" {
		t.Errorf("create changed: %v", out["create"])
	}
}

func TestCheckKeepsExplicitValuesAndMakesConnectionSecret(t *testing.T) {
	news := props(map[string]resource.PropertyValue{
		"connection": obj(map[string]resource.PropertyValue{
			"host": str("h"), "port": num(2200), "user": str("admin"), "dialErrorLimit": num(-1),
			"privateKey": secret(str("KEY")),
		}),
	})
	out, failures := checkVia(t, remoteURN, news)
	if len(failures) != 0 {
		t.Fatalf("unexpected failures: %v", failures)
	}
	if !out["connection"].IsSecret() {
		t.Fatal("a plain connection must come back secret")
	}
	conn := out["connection"].SecretValue().Element.ObjectValue()
	if conn["port"].NumberValue() != 2200 || conn["user"].StringValue() != "admin" || conn["dialErrorLimit"].NumberValue() != -1 {
		t.Errorf("explicit values overwritten: %v", conn)
	}
	if !conn["privateKey"].IsSecret() {
		t.Errorf("nested secret lost: %v", conn["privateKey"])
	}
}

func TestCheckFailures(t *testing.T) {
	cases := []struct {
		name     string
		urn      string
		news     resource.PropertyMap
		property string
		reason   string
	}{
		{"missing host", remoteURN, props(map[string]resource.PropertyValue{
			"connection": secret(obj(map[string]resource.PropertyValue{"user": str("x")})),
		}), "connection.host", "missing required property"},
		{"missing proxy host", remoteURN, props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h"),
				"proxy": obj(map[string]resource.PropertyValue{})}),
		}), "connection.proxy.host", "missing required property"},
		{"missing connection", remoteURN, props(map[string]resource.PropertyValue{"create": str("x")}),
			"connection", "missing required property"},
		{"assetPaths", localURN, props(map[string]resource.PropertyValue{
			"assetPaths": resource.NewArrayProperty([]resource.PropertyValue{str("*.txt")}),
		}), "assetPaths", "not supported by this build"},
		{"port not a number", remoteURN, props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h"), "port": str("22")}),
		}), "connection.port", "must be a number"},
		{"dialErrorLimit not whole", remoteURN, props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h"), "dialErrorLimit": num(1.5)}),
		}), "connection.dialErrorLimit", "whole number"},
		{"logging not a string", localURN, props(map[string]resource.PropertyValue{"logging": num(1)}),
			"logging", "must be a string"},
		{"environment value not a string", localURN, props(map[string]resource.PropertyValue{
			"environment": obj(map[string]resource.PropertyValue{"A": num(1)})}),
			"environment.A", "must be a string"},
		{"archivePaths", localURN, props(map[string]resource.PropertyValue{
			"archivePaths": resource.NewArrayProperty([]resource.PropertyValue{str("out/**")}),
		}), "archivePaths", "not supported by this build"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, failures := checkVia(t, tc.urn, tc.news)
			for _, f := range failures {
				if f.GetProperty() == tc.property && strings.Contains(f.GetReason(), tc.reason) {
					return
				}
			}
			t.Fatalf("want a failure on %s mentioning %q, got %v", tc.property, tc.reason, failures)
		})
	}
}

// Upstream's Check only decodes the inputs into their types: values that are well-typed but
// odd pass, and fail (or not) when the command runs.
func TestCheckAcceptsWhatUpstreamAccepts(t *testing.T) {
	for name, news := range map[string]resource.PropertyMap{
		"empty host": props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("")})}),
		"port 70000 and a fraction": props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h"), "port": num(70000.5)})}),
		"dialErrorLimit -5": props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h"), "dialErrorLimit": num(-5)})}),
		"logging verbose": props(map[string]resource.PropertyValue{
			"connection": obj(map[string]resource.PropertyValue{"host": str("h")}), "logging": str("verbose")}),
		"env name with a dash": props(map[string]resource.PropertyValue{
			"connection":  obj(map[string]resource.PropertyValue{"host": str("h")}),
			"environment": obj(map[string]resource.PropertyValue{"BAD-NAME": str("v")})}),
	} {
		if _, failures := checkVia(t, remoteURN, news); len(failures) != 0 {
			t.Errorf("%s: rejected: %v", name, failures)
		}
	}
}

func TestCheckMakesCredentialsSecret(t *testing.T) {
	out, failures := checkVia(t, remoteURN, props(map[string]resource.PropertyValue{
		"connection": obj(map[string]resource.PropertyValue{
			"host": str("h"), "password": str("pw"), "privateKey": str("KEY"), "privateKeyPassword": str("pp"),
			"proxy": obj(map[string]resource.PropertyValue{"host": str("j"), "privateKey": str("KEY2")}),
		}),
	}))
	if len(failures) != 0 {
		t.Fatal(failures)
	}
	conn := out["connection"].SecretValue().Element.ObjectValue()
	for _, k := range []resource.PropertyKey{"password", "privateKey", "privateKeyPassword"} {
		if !conn[k].IsSecret() {
			t.Errorf("connection.%s not secret", k)
		}
	}
	if !conn["proxy"].ObjectValue()["privateKey"].IsSecret() || conn["host"].IsSecret() {
		t.Errorf("proxy.privateKey must be secret, host not: %v", conn)
	}
}

func TestCheckAcceptsValidLoggingAndUnknowns(t *testing.T) {
	for _, l := range []string{"stdout", "stderr", "stdoutAndStderr", "none"} {
		_, failures := checkVia(t, localURN, props(map[string]resource.PropertyValue{"logging": str(l)}))
		if len(failures) != 0 {
			t.Errorf("logging %q rejected: %v", l, failures)
		}
	}
	// During a preview the host (or the whole connection) may not be known yet.
	for name, conn := range map[string]resource.PropertyValue{
		"unknown host":       secret(obj(map[string]resource.PropertyValue{"host": unknown()})),
		"unknown connection": unknown(),
	} {
		out, failures := checkVia(t, remoteURN, props(map[string]resource.PropertyValue{
			"connection": conn, "logging": unknown(),
		}))
		if len(failures) != 0 {
			t.Errorf("%s: unexpected failures %v", name, failures)
		}
		if !out["connection"].ContainsUnknowns() {
			t.Errorf("%s: unknown lost: %v", name, out["connection"])
		}
	}
	// Local commands accept any environment name a process can carry.
	_, failures := checkVia(t, localURN, props(map[string]resource.PropertyValue{
		"environment": obj(map[string]resource.PropertyValue{"my.var": str("1")}),
	}))
	if len(failures) != 0 {
		t.Errorf("local env name rejected: %v", failures)
	}
}

func TestCheckRejectsUnknownResourceType(t *testing.T) {
	p, _ := testProvider()
	_, err := p.Check(context.Background(), &pulumirpc.CheckRequest{
		Urn: "urn:pulumi:dev::p::command:remote:CopyToRemote::x", News: toStruct(t, resource.PropertyMap{})})
	if err == nil || !strings.Contains(err.Error(), "not supported by this build") {
		t.Fatalf("want an unsupported-type error, got %v", err)
	}
}
