package main

// Diff and the decision whether an update re-runs the command.

import (
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// sameValue reports whether two property values are equal, treating missing and null alike.
// A value that is not known yet never equals anything. Secrecy counts: a value that becomes
// secret (or stops being one) is a change, so the stored state picks up the new secrecy.
func sameValue(a, b resource.PropertyValue, aOK, bOK bool) bool {
	aNull := !aOK || isNullValue(a)
	bNull := !bOK || isNullValue(b)
	if aNull || bNull {
		return aNull && bNull
	}
	if a.ContainsUnknowns() || b.ContainsUnknowns() {
		return false
	}
	if a.ContainsSecrets() != b.ContainsSecrets() {
		return false
	}
	return plain(a).DeepEquals(plain(b))
}

func isNullValue(v resource.PropertyValue) bool {
	inner, _, unknown := peel(v)
	return !unknown && inner.IsNull()
}

// inputsOnly drops the provider-computed outputs from a stored state, leaving its inputs.
func inputsOnly(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		if !outputOnly[string(k)] {
			out[k] = v
		}
	}
	return out
}

// diffInputs compares old and new inputs property by property (top level).
func diffInputs(olds, news resource.PropertyMap, ignoreChanges []string) *pulumirpc.DiffResponse {
	ignored := map[string]bool{}
	for _, k := range ignoreChanges {
		ignored[k] = true
	}
	keys := map[string]bool{}
	for k := range olds {
		keys[string(k)] = true
	}
	for k := range news {
		keys[string(k)] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		if !outputOnly[k] && !ignored[k] {
			sorted = append(sorted, k)
		}
	}
	sort.Strings(sorted)

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	for _, k := range sorted {
		o, oOK := olds[resource.PropertyKey(k)]
		n, nOK := news[resource.PropertyKey(k)]
		if sameValue(o, n, oOK, nOK) {
			continue
		}
		oNull := !oOK || isNullValue(o)
		nNull := !nOK || isNullValue(n)
		kind := pulumirpc.PropertyDiff_UPDATE
		switch {
		case oNull:
			kind = pulumirpc.PropertyDiff_ADD
		case nNull:
			kind = pulumirpc.PropertyDiff_DELETE
		}
		if k == pTriggers {
			// Any change to triggers replaces the resource (create runs again, delete runs for the old one).
			switch kind {
			case pulumirpc.PropertyDiff_ADD:
				kind = pulumirpc.PropertyDiff_ADD_REPLACE
			case pulumirpc.PropertyDiff_DELETE:
				kind = pulumirpc.PropertyDiff_DELETE_REPLACE
			default:
				kind = pulumirpc.PropertyDiff_UPDATE_REPLACE
			}
			resp.Replaces = append(resp.Replaces, k)
		}
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
		resp.Diffs = append(resp.Diffs, k)
		resp.DetailedDiff[k] = &pulumirpc.PropertyDiff{Kind: kind, InputDiff: true}
	}
	return resp
}

// runKeys are the inputs whose change makes an update run the command again.
func runKeys(kind resourceKind) []string {
	keys := []string{pCreate, pUpdate, pEnvironment, pStdin, pAddPrevious}
	if kind == kindLocal {
		keys = append(keys, pInterpreter, pDir)
	}
	return keys
}

// effective returns the value a run key stands for once defaults apply, so that, say, an
// absent addPreviousOutputInEnv and an explicit true do not count as a change.
func effective(kind resourceKind, m resource.PropertyMap, key string) (resource.PropertyValue, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if ok && isNullValue(v) {
		ok = false
	}
	if ok {
		if v.ContainsUnknowns() {
			return v, true
		}
		v = plain(v)
	}
	switch key {
	case pAddPrevious:
		if !ok {
			return resource.NewBoolProperty(true), true
		}
	case pEnvironment:
		if !ok || (v.IsObject() && len(v.ObjectValue()) == 0) {
			return resource.NewObjectProperty(resource.PropertyMap{}), true
		}
	case pInterpreter:
		if !ok || (v.IsArray() && len(v.ArrayValue()) == 0) {
			arr := make([]resource.PropertyValue, len(defaultInterpreter))
			for i, s := range defaultInterpreter {
				arr[i] = resource.NewStringProperty(s)
			}
			return resource.NewArrayProperty(arr), true
		}
	}
	return v, ok
}

// updateRunsCommand decides whether an update from oldInputs to newInputs runs the command:
// only when something that shapes what the command does changed. A change to the connection,
// delete, logging or triggers alone does not re-run it.
func updateRunsCommand(kind resourceKind, oldInputs, newInputs resource.PropertyMap) bool {
	for _, k := range runKeys(kind) {
		o, oOK := effective(kind, oldInputs, k)
		n, nOK := effective(kind, newInputs, k)
		if oOK != nOK {
			return true
		}
		if !oOK {
			continue
		}
		if n.ContainsUnknowns() || o.ContainsUnknowns() || !o.DeepEquals(n) {
			return true
		}
	}
	return false
}
