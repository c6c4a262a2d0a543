package main

// Helpers for reading the engine's property maps. Values arrive with secrets and unknowns kept,
// so every accessor first looks through secret wrappers and reports unknowns explicitly.

import (
	"fmt"
	"math"
	"sort"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

var rpcOptions = plugin.MarshalOptions{KeepSecrets: true, KeepUnknowns: true}

func unmarshal(s *structpb.Struct, label string) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	opts := rpcOptions
	opts.Label = label
	m, err := plugin.UnmarshalProperties(s, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	return m, nil
}

func marshal(m resource.PropertyMap, label string) (*structpb.Struct, error) {
	opts := rpcOptions
	opts.Label = label
	return plugin.MarshalProperties(m, opts)
}

// peel removes secret wrappers (and known output wrappers) from the outside of v.
// It reports whether a secret wrapper was seen and whether the value is unknown.
func peel(v resource.PropertyValue) (inner resource.PropertyValue, secret, unknown bool) {
	for {
		switch {
		case v.IsSecret():
			secret = true
			v = v.SecretValue().Element
		case v.IsOutput():
			o := v.OutputValue()
			secret = secret || o.Secret
			if !o.Known {
				return v, secret, true
			}
			v = o.Element
		case v.IsComputed():
			return v, secret, true
		default:
			return v, secret, false
		}
	}
}

// plain returns v with every secret wrapper removed, at any depth. Unknowns stay unknown.
func plain(v resource.PropertyValue) resource.PropertyValue {
	v, _, unknown := peel(v)
	if unknown {
		return resource.MakeComputed(resource.NewStringProperty(""))
	}
	switch {
	case v.IsArray():
		arr := v.ArrayValue()
		out := make([]resource.PropertyValue, len(arr))
		for i, e := range arr {
			out[i] = plain(e)
		}
		return resource.NewArrayProperty(out)
	case v.IsObject():
		return resource.NewObjectProperty(plainMap(v.ObjectValue()))
	}
	return v
}

func plainMap(m resource.PropertyMap) resource.PropertyMap {
	out := make(resource.PropertyMap, len(m))
	for k, e := range m {
		out[k] = plain(e)
	}
	return out
}

// isAbsent reports whether a property is missing or null (the two are treated alike).
func isAbsent(m resource.PropertyMap, key string) bool {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return true
	}
	inner, _, unknown := peel(v)
	return !unknown && inner.IsNull()
}

// field is a decoded property together with its secret and unknown flags.
type field struct {
	v       resource.PropertyValue
	present bool
	secret  bool
	unknown bool
}

func get(m resource.PropertyMap, key string) field {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return field{}
	}
	inner, secret, unknown := peel(v)
	if !unknown && inner.IsNull() {
		return field{secret: secret}
	}
	return field{v: inner, present: true, secret: secret || v.ContainsSecrets(), unknown: unknown}
}

func (f field) str(name string) (*string, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsString() {
		return nil, fmt.Errorf("%s must be a string, got %s", name, f.v.TypeString())
	}
	s := f.v.StringValue()
	return &s, nil
}

func (f field) boolean(name string) (*bool, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsBool() {
		return nil, fmt.Errorf("%s must be a boolean, got %s", name, f.v.TypeString())
	}
	b := f.v.BoolValue()
	return &b, nil
}

func (f field) integer(name string) (*int, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsNumber() {
		return nil, fmt.Errorf("%s must be a number, got %s", name, f.v.TypeString())
	}
	n := f.v.NumberValue()
	if n != math.Trunc(n) || math.IsInf(n, 0) || math.Abs(n) > 1<<31 {
		return nil, fmt.Errorf("%s must be a whole number, got %v", name, n)
	}
	i := int(n)
	return &i, nil
}

func (f field) strings(name string) ([]string, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsArray() {
		return nil, fmt.Errorf("%s must be an array of strings, got %s", name, f.v.TypeString())
	}
	var out []string
	for i, e := range f.v.ArrayValue() {
		inner, _, unknown := peel(e)
		if unknown {
			return nil, fmt.Errorf("%s[%d] is not known yet", name, i)
		}
		if !inner.IsString() {
			return nil, fmt.Errorf("%s[%d] must be a string, got %s", name, i, inner.TypeString())
		}
		out = append(out, inner.StringValue())
	}
	return out, nil
}

func (f field) stringMap(name string) (map[string]string, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsObject() {
		return nil, fmt.Errorf("%s must be a map of strings, got %s", name, f.v.TypeString())
	}
	out := map[string]string{}
	for k, e := range f.v.ObjectValue() {
		inner, _, unknown := peel(e)
		if unknown {
			return nil, fmt.Errorf("%s.%s is not known yet", name, k)
		}
		if inner.IsNull() {
			continue
		}
		if !inner.IsString() {
			return nil, fmt.Errorf("%s.%s must be a string, got %s", name, k, inner.TypeString())
		}
		out[string(k)] = inner.StringValue()
	}
	return out, nil
}

func (f field) object(name string) (resource.PropertyMap, error) {
	if !f.present {
		return nil, nil
	}
	if f.unknown {
		return nil, fmt.Errorf("%s is not known yet", name)
	}
	if !f.v.IsObject() {
		return nil, fmt.Errorf("%s must be an object, got %s", name, f.v.TypeString())
	}
	return f.v.ObjectValue(), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
