// Package adminv1 is the Go code for leakproof.admin.v1.AdminService, the
// live view of a process's leakproof subchannels: serve it with
// admin.Register (github.com/leakproof/leakproof/admin) and call it with
// NewAdminServiceClient or `leakproof trace`.
//
// The .pb.go files are generated from admin.proto by scripts/genproto.sh;
// edit the .proto and regenerate rather than editing them.
package adminv1
