package main

import (
	"context"
	"sort"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func baseRemoteInputs() resource.PropertyMap {
	return props(map[string]resource.PropertyValue{
		"connection": secret(obj(map[string]resource.PropertyValue{
			"host": str("10.0.0.5"), "port": num(22), "user": str("root"),
			"dialErrorLimit": num(10), "perDialTimeout": num(15),
		})),
		"create":      str("echo create"),
		"update":      str("echo update"),
		"delete":      str("echo delete"),
		"environment": obj(map[string]resource.PropertyValue{"A": str("1")}),
		"stdin":       str("in"),
		"triggers":    resource.NewArrayProperty([]resource.PropertyValue{str("t1")}),
		"logging":     str("stdout"),
	})
}

func diffVia(t *testing.T, urn string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	t.Helper()
	p, _ := testProvider()
	// The state holds the inputs plus outputs; old_inputs holds only the inputs.
	state := olds.Copy()
	state["stdout"] = str("previous out")
	state["stderr"] = str("")
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Olds: toStruct(t, state), OldInputs: toStruct(t, olds), News: toStruct(t, news)})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return resp
}

func TestDiffNoChange(t *testing.T) {
	resp := diffVia(t, remoteURN, baseRemoteInputs(), baseRemoteInputs())
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE || len(resp.GetDetailedDiff()) != 0 {
		t.Fatalf("want no diff, got %v", resp)
	}
	// Null and absent are the same thing.
	news := baseRemoteInputs()
	news["dir"] = resource.NewNullProperty()
	if resp := diffVia(t, remoteURN, baseRemoteInputs(), news); resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("null vs absent should not differ: %v", resp)
	}
}

func TestDiffPropertyClasses(t *testing.T) {
	cases := []struct {
		name    string
		change  func(m resource.PropertyMap)
		key     string
		kind    pulumirpc.PropertyDiff_Kind
		replace bool
	}{
		{"create", func(m resource.PropertyMap) { m["create"] = str("echo other") }, "create", pulumirpc.PropertyDiff_UPDATE, false},
		{"update", func(m resource.PropertyMap) { m["update"] = str("echo u2") }, "update", pulumirpc.PropertyDiff_UPDATE, false},
		{"delete", func(m resource.PropertyMap) { m["delete"] = str("echo d2") }, "delete", pulumirpc.PropertyDiff_UPDATE, false},
		{"environment", func(m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"A": str("2")})
		}, "environment", pulumirpc.PropertyDiff_UPDATE, false},
		{"stdin removed", func(m resource.PropertyMap) { delete(m, "stdin") }, "stdin", pulumirpc.PropertyDiff_DELETE, false},
		{"logging", func(m resource.PropertyMap) { m["logging"] = str("none") }, "logging", pulumirpc.PropertyDiff_UPDATE, false},
		{"addPreviousOutputInEnv added", func(m resource.PropertyMap) {
			m["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		}, "addPreviousOutputInEnv", pulumirpc.PropertyDiff_ADD, false},
		{"connection host", func(m resource.PropertyMap) {
			c := m["connection"].SecretValue().Element.ObjectValue().Copy()
			c["host"] = str("10.0.0.6")
			m["connection"] = secret(resource.NewObjectProperty(c))
		}, "connection", pulumirpc.PropertyDiff_UPDATE, false},
		{"connection unknown", func(m resource.PropertyMap) { m["connection"] = unknown() },
			"connection", pulumirpc.PropertyDiff_UPDATE, false},
		{"triggers changed", func(m resource.PropertyMap) {
			m["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{str("t2")})
		}, "triggers", pulumirpc.PropertyDiff_UPDATE_REPLACE, true},
		{"triggers unknown", func(m resource.PropertyMap) { m["triggers"] = unknown() },
			"triggers", pulumirpc.PropertyDiff_UPDATE_REPLACE, true},
		{"triggers removed", func(m resource.PropertyMap) { delete(m, "triggers") },
			"triggers", pulumirpc.PropertyDiff_DELETE_REPLACE, true},
		{"stdin became secret", func(m resource.PropertyMap) { m["stdin"] = secret(str("in")) },
			"stdin", pulumirpc.PropertyDiff_UPDATE, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			news := baseRemoteInputs()
			tc.change(news)
			resp := diffVia(t, remoteURN, baseRemoteInputs(), news)
			if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME {
				t.Fatalf("want DIFF_SOME, got %v", resp)
			}
			if len(resp.GetDetailedDiff()) != 1 {
				t.Fatalf("want exactly one changed property, got %v", resp.GetDetailedDiff())
			}
			d := resp.GetDetailedDiff()[tc.key]
			if d == nil || d.GetKind() != tc.kind || !d.GetInputDiff() {
				t.Fatalf("detailed diff for %s = %v, want %v", tc.key, d, tc.kind)
			}
			if got := len(resp.GetReplaces()) > 0; got != tc.replace {
				t.Fatalf("replaces = %v, want replace=%v", resp.GetReplaces(), tc.replace)
			}
			if tc.replace && resp.GetReplaces()[0] != "triggers" {
				t.Fatalf("replaces = %v", resp.GetReplaces())
			}
		})
	}
}

func TestDiffLocalAndMultipleKeys(t *testing.T) {
	olds := props(map[string]resource.PropertyValue{"create": str("a"), "dir": str("/tmp")})
	news := props(map[string]resource.PropertyValue{"create": str("b"), "interpreter": resource.NewArrayProperty(
		[]resource.PropertyValue{str("/bin/bash"), str("-c")})})
	resp := diffVia(t, localURN, olds, news)
	var keys []string
	for k := range resp.GetDetailedDiff() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 3 || keys[0] != "create" || keys[1] != "dir" || keys[2] != "interpreter" {
		t.Fatalf("changed keys = %v", keys)
	}
	if resp.GetDetailedDiff()["interpreter"].GetKind() != pulumirpc.PropertyDiff_ADD ||
		resp.GetDetailedDiff()["dir"].GetKind() != pulumirpc.PropertyDiff_DELETE {
		t.Fatalf("kinds: %v", resp.GetDetailedDiff())
	}
}

func TestDiffFallsBackToStateWithoutOldInputs(t *testing.T) {
	p, _ := testProvider()
	state := baseRemoteInputs()
	state["stdout"] = str("x")
	state["stderr"] = str("y")
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: remoteURN, Olds: toStruct(t, state), News: toStruct(t, baseRemoteInputs())})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("outputs in the state must not count as a diff: %v", resp)
	}
}

func TestUpdateRunsCommandDecision(t *testing.T) {
	cases := []struct {
		name   string
		kind   resourceKind
		change func(m resource.PropertyMap)
		runs   bool
	}{
		{"nothing", kindRemote, func(resource.PropertyMap) {}, false},
		{"create", kindRemote, func(m resource.PropertyMap) { m["create"] = str("echo 2") }, true},
		{"update", kindRemote, func(m resource.PropertyMap) { m["update"] = str("echo 2") }, true},
		{"environment value", kindRemote, func(m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"A": str("2")})
		}, true},
		{"environment unknown value", kindRemote, func(m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"A": unknown()})
		}, true},
		{"stdin", kindRemote, func(m resource.PropertyMap) { m["stdin"] = str("other") }, true},
		{"addPreviousOutputInEnv false", kindRemote, func(m resource.PropertyMap) {
			m["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		}, true},
		{"addPreviousOutputInEnv explicit true", kindRemote, func(m resource.PropertyMap) {
			m["addPreviousOutputInEnv"] = resource.NewBoolProperty(true)
		}, false},
		{"connection", kindRemote, func(m resource.PropertyMap) {
			m["connection"] = secret(obj(map[string]resource.PropertyValue{"host": str("elsewhere")}))
		}, false},
		{"connection unknown", kindRemote, func(m resource.PropertyMap) { m["connection"] = unknown() }, false},
		{"delete", kindRemote, func(m resource.PropertyMap) { m["delete"] = str("echo bye") }, false},
		{"logging", kindRemote, func(m resource.PropertyMap) { m["logging"] = str("none") }, false},
		{"stdin secrecy only", kindRemote, func(m resource.PropertyMap) { m["stdin"] = secret(str("in")) }, false},
		{"interpreter (local)", kindLocal, func(m resource.PropertyMap) {
			m["interpreter"] = resource.NewArrayProperty([]resource.PropertyValue{str("/bin/bash"), str("-c")})
		}, true},
		{"interpreter set to the default (local)", kindLocal, func(m resource.PropertyMap) {
			m["interpreter"] = resource.NewArrayProperty([]resource.PropertyValue{str("/bin/sh"), str("-c")})
		}, false},
		{"dir (local)", kindLocal, func(m resource.PropertyMap) { m["dir"] = str("/tmp") }, true},
		{"environment removed (local)", kindLocal, func(m resource.PropertyMap) {
			delete(m, "environment")
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			olds := baseRemoteInputs()
			news := baseRemoteInputs()
			tc.change(news)
			if got := updateRunsCommand(tc.kind, olds, news); got != tc.runs {
				t.Fatalf("updateRunsCommand = %v, want %v", got, tc.runs)
			}
		})
	}
	// An absent environment and an empty one are the same.
	a := props(map[string]resource.PropertyValue{"create": str("x")})
	b := props(map[string]resource.PropertyValue{"create": str("x"), "environment": obj(nil)})
	if updateRunsCommand(kindLocal, a, b) {
		t.Fatal("absent and empty environment should not trigger a run")
	}
}

func TestUpdatePreviewUnknownOnlyWhenRunning(t *testing.T) {
	p, _ := testProvider()
	olds := baseRemoteInputs()
	state := olds.Copy()
	state["stdout"] = str("old out")
	state["stderr"] = str("old err")
	for _, tc := range []struct {
		name   string
		change func(resource.PropertyMap)
		runs   bool
	}{
		{"connection only", func(m resource.PropertyMap) { m["connection"] = unknown() }, false},
		{"create changed", func(m resource.PropertyMap) { m["create"] = str("echo new") }, true},
		{"create unknown", func(m resource.PropertyMap) { m["update"] = unknown() }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			news := olds.Copy()
			tc.change(news)
			resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: remoteURN, Preview: true,
				Olds: toStruct(t, state), OldInputs: toStruct(t, olds), News: toStruct(t, news)})
			if err != nil {
				t.Fatal(err)
			}
			out := fromStruct(t, resp.GetProperties())
			if got := out["stdout"].IsComputed(); got != tc.runs {
				t.Fatalf("stdout unknown = %v, want %v (%v)", got, tc.runs, out["stdout"])
			}
			if !tc.runs && (out["stdout"].StringValue() != "old out" || out["stderr"].StringValue() != "old err") {
				t.Fatalf("previous outputs not kept: %v", out)
			}
		})
	}
}
