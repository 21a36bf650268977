package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/leakproof/leakproof/admin"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

func traceWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("watch", "--addr HOST:PORT [--from SEQ] [--target T] [--key K] [--subchannel N] [--count N] [--json]", stderr)
	addr := fs.String("addr", "", "the admin service, HOST:PORT (required)")
	from := fs.Uint64("from", 0, "first replay the events the rings still hold with seq >= `SEQ` (1: all of them); 0: live events only")
	target := fs.String("target", "", "only events of channels with this `target`")
	key := fs.String("key", "", "only events of subchannels with this backend `key`")
	sub := fs.Uint64("subchannel", 0, "only events of subchannel `N`")
	count := fs.Int("count", 0, "stop after `N` events; 0: until Ctrl-C or the stream ends")
	asJSON := fs.Bool("json", false, "print events as JSON lines: a trace file for check and show")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	switch {
	case len(pos) > 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case *addr == "":
		return usageError(fs, "--addr is required")
	case *count < 0:
		return usageError(fs, "--count %d: want 0 or more", *count)
	}
	conn, err := dialAdmin(*addr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := adminv1.NewAdminServiceClient(conn).WatchEvents(ctx, &adminv1.WatchEventsRequest{
		FromSeq: *from, Target: *target, Key: *key, SubchannelId: *sub,
	})
	if err != nil {
		if ctx.Err() != nil {
			return exitOK
		}
		return rpcFailed(stderr, "watch", *addr, err)
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	for n := 0; *count == 0 || n < *count; n++ {
		resp, err := stream.Recv()
		if err != nil {
			w.Flush()
			switch {
			case ctx.Err() != nil: // Ctrl-C
				return exitOK
			case err == io.EOF:
				fmt.Fprintln(stderr, "leakproof trace watch: the service ended the stream")
				return exitOK
			case status.Code(err) == codes.ResourceExhausted:
				fmt.Fprintf(stderr, "leakproof trace watch: dropped by the service for reading too slowly: %s\n", status.Convert(err).Message())
				return exitError
			}
			return rpcFailed(stderr, "watch", *addr, err)
		}
		e := admin.EventFromProto(resp.GetEvent())
		if *asJSON {
			if err := enc.Encode(e); err != nil {
				fmt.Fprintf(stderr, "leakproof trace watch: %v\n", err)
				return exitError
			}
		} else {
			fmt.Fprintln(w, formatEvent(e, *target == ""))
		}
		w.Flush() // a live tail shows each event as it comes
	}
	return exitOK
}

func traceList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("list", "--addr HOST:PORT [--target T] [--json]", stderr)
	addr := fs.String("addr", "", "the admin service, HOST:PORT (required)")
	target := fs.String("target", "", "only subchannels of channels with this `target`")
	asJSON := fs.Bool("json", false, "print the service's response as JSON")
	timeout := fs.Duration("timeout", defaultTimeout, "give up on the service after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	switch {
	case len(pos) > 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case *addr == "":
		return usageError(fs, "--addr is required")
	}
	conn, err := dialAdmin(*addr)
	if err != nil {
		return usageError(fs, "%v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := adminv1.NewAdminServiceClient(conn).ListSubchannels(ctx, &adminv1.ListSubchannelsRequest{Target: *target})
	if err != nil {
		return rpcFailed(stderr, "list", *addr, err)
	}
	if *asJSON {
		b, err := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
		if err != nil {
			fmt.Fprintf(stderr, "leakproof trace list: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "%s\n", b)
		return exitOK
	}
	writeList(stdout, resp)
	return exitOK
}

// writeList prints the subchannels as a table, then their sockets.
func writeList(out io.Writer, resp *adminv1.ListSubchannelsResponse) {
	subs := resp.GetSubchannels()
	if len(subs) == 0 {
		fmt.Fprintln(out, "no live subchannel")
	} else {
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMGR\tTARGET\tKEY\tSTATE\tREFS\tHOLDERS\tSOCKETS\tAGE\tSHUTDOWN\tLOST\tLAST LOSS")
		for _, sc := range subs {
			shut := "-"
			if sc.GetShutdown() {
				shut = "yes"
				if t := sc.GetShutdownTime(); t != nil {
					shut = time.Since(t.AsTime()).Round(time.Millisecond).String() + " ago"
				}
			}
			socks := fmt.Sprint(len(sc.GetSockets()))
			if d := sc.GetDialing(); d > 0 {
				socks += fmt.Sprintf(" (+%d dialing)", d)
			}
			fmt.Fprintf(tw, "#%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n",
				sc.GetId(), sc.GetManagerId(), sc.GetTarget(), sc.GetKey(), sc.GetState(), sc.GetRefs(),
				dash(strings.Join(sc.GetHolders(), ",")), socks, sc.GetAge().AsDuration().Round(time.Millisecond),
				shut, sc.GetConnectionsLost(), dash(sc.GetLastLoss()))
		}
		tw.Flush()

		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		header := false
		for _, sc := range subs {
			for _, s := range sc.GetSockets() {
				if !header {
					fmt.Fprintln(out)
					fmt.Fprintln(tw, "SUBCHANNEL\tSOCKET\tLOCAL\tREMOTE\tOPEN FOR\tGOAWAY")
					header = true
				}
				goaway := "-"
				if s.GetGoaway() {
					goaway = "yes"
				}
				fmt.Fprintf(tw, "#%d\t%d\t%s\t%s\t%s\t%s\n", sc.GetId(), s.GetId(), s.GetLocalAddress(), s.GetRemoteAddress(),
					time.Since(s.GetOpenTime().AsTime()).Round(time.Millisecond), goaway)
			}
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\n%d subchannel(s) in %d manager(s); watchers: %d active, %d dropped; subscriptions dropped: %d\n",
		len(subs), len(resp.GetManagers()), resp.GetActiveWatchers(), resp.GetDroppedWatchers(), resp.GetDroppedSubscriptions())
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// checkLive runs `trace check --addr`.
func checkLive(ctx context.Context, addr, target string, grace *time.Duration, timeout time.Duration, stdout, stderr io.Writer) int {
	conn, err := dialAdmin(addr)
	if err != nil {
		fmt.Fprintf(stderr, "leakproof trace check: %v\n", err)
		return exitError
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := &adminv1.CheckLeaksRequest{Target: target}
	if grace != nil {
		req.GracePeriod = durationpb.New(*grace)
	}
	resp, err := adminv1.NewAdminServiceClient(conn).CheckLeaks(ctx, req)
	if err != nil {
		return rpcFailed(stderr, "check", addr, err)
	}
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, p := range resp.GetProblems() {
		fmt.Fprintf(w, "%s: subchannel #%d %s (manager %d, target %q): %s\n",
			p.GetKind(), p.GetSubchannelId(), p.GetKey(), p.GetManagerId(), p.GetTarget(), p.GetMessage())
		for _, e := range p.GetEvents() {
			fmt.Fprintf(w, "    %s\n", formatEvent(admin.EventFromProto(e), false))
		}
	}
	verdict := "clean"
	if n := len(resp.GetProblems()); n > 0 {
		verdict = fmt.Sprintf("%d problem(s)", n)
	}
	fmt.Fprintf(w, "%d subchannel(s) alive, %d draining within the grace period of %v, %d ring event(s) replayed: %s\n",
		resp.GetSubchannels(), resp.GetDraining(), resp.GetGracePeriod().AsDuration(), resp.GetEventsChecked(), verdict)
	if len(resp.GetProblems()) > 0 {
		return exitProblem
	}
	return exitOK
}
