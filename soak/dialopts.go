package soak

import (
	"context"
	"errors"
	"fmt"
	"go/token"
	"net"
	"reflect"
	"runtime"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// takeover is a grpc dial option that would take over what the soak needs
// to watch a channel, and what to use instead.
type takeover struct {
	option  string // grpc's function, as the user wrote it
	instead string
}

// takeovers are the dial options Config.DialOptions may not carry, keyed by
// the grpc function whose closure sets them. WithDialer is WithContextDialer
// inside, WithInsecure sets transport credentials.
var takeovers = map[string]takeover{
	"WithContextDialer":        {"grpc.WithContextDialer (or WithDialer)", "set Config.Dialer: the soak dials through it, under its socket tracking"},
	"WithTransportCredentials": {"grpc.WithTransportCredentials", "leave credentials to the soak: insecure, or with Config.TLS the run's CA"},
	"WithInsecure":             {"grpc.WithInsecure", "leave credentials to the soak: insecure, or with Config.TLS the run's CA"},
	"WithCredentialsBundle":    {"grpc.WithCredentialsBundle", "leave credentials to the soak: insecure, or with Config.TLS the run's CA"},
	"WithResolvers":            {"grpc.WithResolvers", "set Config.Resolver: the soak's resolver feeds the channels"},
	"WithDefaultServiceConfig": {"grpc.WithDefaultServiceConfig", "set Config.ServiceConfig"},
	"WithDisableServiceConfig": {"grpc.WithDisableServiceConfig", "leave it out: the soak's resolvers (the DNS TXT record, the xDS plane) supply service configs"},
}

// checkDialOptions refuses the options of opts that would take over the
// soak's resolver, dialer, credentials or service config, naming the first
// one found.
//
// grpc.DialOption is opaque: grpc's options are a struct holding the
// closure that sets the field, and the compiler names that closure after
// the grpc function that made it (also when it is inlined into the caller:
// "caller.WithContextDialer.func1"). checkDialOptions reads that name by
// reflection; a representation it cannot read is an error, so an option
// is never silently overridden (dialOptionsReadable checks the reading on
// grpc's own options).
func checkDialOptions(opts []grpc.DialOption) error {
	for i, o := range opts {
		names, err := dialOptionFuncs(o)
		if errors.Is(err, errNilDialOption) {
			return fmt.Errorf("DialOptions[%d] is nil (grpc.NewClient would panic on it)", i)
		}
		if err != nil {
			return fmt.Errorf("DialOptions[%d]: %w", i, err)
		}
		for _, n := range names {
			if t, ok := takeovers[n]; ok {
				return fmt.Errorf("DialOptions[%d] is %s, which would take over what the soak watches the channel with: %s", i, t.option, t.instead)
			}
		}
	}
	return nil
}

// errOpaqueDialOption is the error for an option whose grpc function
// cannot be read.
var errOpaqueDialOption = errors.New("cannot tell which grpc dial option this is: only grpc's own options, and types embedding exactly one, can be screened")

// errNilDialOption is the error for a nil option, on which grpc.NewClient
// would panic.
var errNilDialOption = errors.New("nil dial option")

// dialOptionFuncs returns the names of the grpc functions that made o (one
// per option; several for a joined option), "" for an option that sets
// nothing (grpc.EmptyDialOption and types embedding it).
func dialOptionFuncs(o grpc.DialOption) ([]string, error) {
	return optionFuncs(reflect.ValueOf(o))
}

func optionFuncs(v reflect.Value) ([]string, error) {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return nil, errNilDialOption
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return nil, errNilDialOption
	}
	if v.Kind() != reflect.Struct {
		return nil, errOpaqueDialOption
	}
	if t := v.Type(); embedsEmpty(t) || t.PkgPath() == grpcPkg && t.Name() != "" && token.IsExported(t.Name()) {
		// grpc's exported option types (EmptyDialOption,
		// MaxHeaderListSizeDialOption) and types embedding EmptyDialOption
		// set nothing the soak needs.
		return []string{""}, nil
	}
	switch v.NumField() {
	case 0: // grpc's marker options (disableGlobalDialOptions)
		return []string{""}, nil
	case 1:
		switch f := v.Field(0); f.Kind() {
		case reflect.Func: // grpc's funcDialOption
			if f.IsNil() {
				return nil, errOpaqueDialOption
			}
			fn := runtime.FuncForPC(f.Pointer())
			if fn == nil {
				return nil, errOpaqueDialOption
			}
			return []string{grpcFunc(fn.Name())}, nil
		case reflect.Interface: // a type that embeds one grpc.DialOption
			return optionFuncs(f)
		case reflect.Slice: // grpc's joinDialOption
			var names []string
			for j := range f.Len() {
				n, err := optionFuncs(f.Index(j))
				if err != nil {
					return nil, err
				}
				names = append(names, n...)
			}
			return names, nil
		}
	}
	return nil, errOpaqueDialOption
}

// grpcPkg is the import path of grpc's dial options.
var grpcPkg = reflect.TypeFor[grpc.EmptyDialOption]().PkgPath()

// embedsEmpty reports whether t embeds grpc.EmptyDialOption, whose apply
// sets nothing (grpc.MaxHeaderListSizeDialOption and users' own types).
func embedsEmpty(t reflect.Type) bool {
	empty := reflect.TypeFor[grpc.EmptyDialOption]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == empty {
			return true
		}
	}
	return false
}

// grpcFunc returns the grpc function named in a closure's name:
// "google.golang.org/grpc.WithContextDialer.func1" and, inlined,
// "example.com/x.newClient.WithContextDialer.func2" are WithContextDialer.
func grpcFunc(closure string) string {
	parts := strings.Split(closure[strings.LastIndex(closure, "/")+1:], ".")
	for i := len(parts) - 1; i > 0; i-- {
		if strings.HasPrefix(parts[i], "func") && strings.HasPrefix(parts[i-1], "With") {
			return parts[i-1]
		}
	}
	for _, p := range parts {
		if strings.HasPrefix(p, "With") {
			return p
		}
	}
	return closure
}

// dialOptionsReadable reports whether checkDialOptions reads this grpc's
// options: each takeover made here is recognised, and a harmless one is
// not.
func dialOptionsReadable() error {
	dial := func(context.Context, string) (net.Conn, error) { return nil, errors.New("unused") }
	for want, o := range map[string]grpc.DialOption{
		"WithContextDialer":        grpc.WithContextDialer(dial),
		"WithTransportCredentials": grpc.WithTransportCredentials(insecure.NewCredentials()),
		"WithResolvers":            grpc.WithResolvers(),
		"WithDefaultServiceConfig": grpc.WithDefaultServiceConfig("{}"),
		"WithUserAgent":            grpc.WithUserAgent("soak"),
	} {
		names, err := dialOptionFuncs(o)
		if err != nil || len(names) != 1 || names[0] != want {
			return fmt.Errorf("soak: grpc.%s reads as %q (%v): cannot screen DialOptions with this grpc version", want, names, err)
		}
	}
	return nil
}
