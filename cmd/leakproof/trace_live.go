package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/leakproof/leakproof/admin"
	"github.com/leakproof/leakproof/internal/termsafe"
	adminv1 "github.com/leakproof/leakproof/proto/leakproof/admin/v1"
)

func traceWatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("watch", "--addr HOST:PORT [connection flags] [--from SEQ] [--target T] [--key K] [--subchannel N] [--count N] [--json]", stderr)
	cf := addConnFlags(fs, "the admin service, `HOST:PORT` (required)")
	addr := &cf.addr
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
	if err := cf.check(); err != nil {
		return usageError(fs, "%v", err)
	}
	conn, err := cf.dial()
	if err != nil {
		return usageError(fs, "%v", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := adminv1.NewAdminServiceClient(conn).WatchEvents(cf.outgoing(ctx), &adminv1.WatchEventsRequest{
		FromSeq: *from, Target: *target, Key: *key, SubchannelId: *sub,
	})
	if err != nil {
		if ended(ctx) {
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
			case ended(ctx): // Ctrl-C, or the caller's deadline
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
	fs := newFlags("list", "--addr HOST:PORT [connection flags] [--target T] [--json]", stderr)
	cf := addConnFlags(fs, "the admin service, `HOST:PORT` (required)")
	addr := &cf.addr
	target := fs.String("target", "", "only subchannels of channels with this `target`")
	asJSON := fs.Bool("json", false, "print the service's response as JSON")
	timeout := fs.Duration("timeout", defaultTimeout, "give up on the service after this long")
	pageSize := fs.Int("page-size", defaultPageSize, "ask for `N` subchannels per call (the command pages through all of them)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseExit(err)
	}
	switch {
	case len(pos) > 0:
		return usageError(fs, "unexpected argument %q", pos[0])
	case *addr == "":
		return usageError(fs, "--addr is required")
	case *pageSize < 1:
		return usageError(fs, "--page-size %d: want 1 or more", *pageSize)
	}
	if err := cf.check(); err != nil {
		return usageError(fs, "%v", err)
	}
	conn, err := cf.dial()
	if err != nil {
		return usageError(fs, "%v", err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := listAll(cf.outgoing(ctx), adminv1.NewAdminServiceClient(conn), *target, int32(min(*pageSize, math.MaxInt32)))
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
		fmt.Fprintln(tw, "ID\tCHANNELZ\tMGR\tTARGET\tKEY\tSTATE\tREFS\tHOLDERS\tSOCKETS\tAGE\tSHUTDOWN\tLOST\tLAST LOSS")
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
			holders := make([]string, len(sc.GetHolders()))
			for i, h := range sc.GetHolders() {
				holders[i] = termsafe.Quote(h)
			}
			fmt.Fprintf(tw, "#%d\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n",
				sc.GetId(), channelzID(sc.GetChannelzSubchannelId()), sc.GetManagerId(), termsafe.Quote(sc.GetTarget()), termsafe.Quote(sc.GetKey()),
				termsafe.Quote(sc.GetState()), sc.GetRefs(), dash(strings.Join(holders, ",")), socks,
				sc.GetAge().AsDuration().Round(time.Millisecond), shut, sc.GetConnectionsLost(), dash(termsafe.Quote(sc.GetLastLoss())))
		}
		tw.Flush()

		tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		header := false
		for _, sc := range subs {
			for _, s := range sc.GetSockets() {
				if !header {
					fmt.Fprintln(out)
					fmt.Fprintln(tw, "SUBCHANNEL\tSOCKET\tCHANNELZ\tLOCAL\tREMOTE\tOPEN FOR\tGOAWAY")
					header = true
				}
				goaway := "-"
				if s.GetGoaway() {
					goaway = "yes"
				}
				fmt.Fprintf(tw, "#%d\t%d\t%s\t%s\t%s\t%s\t%s\n", sc.GetId(), s.GetId(), channelzID(s.GetChannelzSocketId()), termsafe.Quote(s.GetLocalAddress()), termsafe.Quote(s.GetRemoteAddress()),
					time.Since(s.GetOpenTime().AsTime()).Round(time.Millisecond), goaway)
			}
		}
		tw.Flush()
	}
	if ms := resp.GetManagers(); len(ms) > 0 {
		fmt.Fprintln(out)
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "MGR\tTARGET\tCLOSED\tCREATED\tDESTROYED\tREFS/UNREFS\tLEAKS\tORPHANS\tSOCKETS OPENED/CLOSED\tDRAIN TIMEOUTS\tCONNECTIONS LOST")
		for _, m := range ms {
			st := admin.StatsFromProto(m.GetStats())
			closed := "-"
			if m.GetClosed() {
				closed = "yes"
			}
			var lost []string
			for _, c := range slices.Sorted(maps.Keys(st.ConnectionsLost)) {
				lost = append(lost, fmt.Sprintf("%s=%d", termsafe.Quote(string(c)), st.ConnectionsLost[c]))
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d/%d\t%d\t%d\t%d/%d\t%d\t%s\n", m.GetId(), termsafe.Quote(m.GetTarget()), closed,
				st.Created, st.Destroyed, st.Refs, st.Unrefs, st.Leaks, st.Orphans, st.SocketsOpened, st.SocketsClosed,
				st.DrainTimeouts, dash(strings.Join(lost, " ")))
		}
		tw.Flush()
	}
	fmt.Fprintf(out, "\n%d subchannel(s) in %d manager(s); watchers: %d active, %d dropped; subscriptions dropped: %d\n",
		len(subs), len(resp.GetManagers()), resp.GetActiveWatchers(), resp.GetDroppedWatchers(), resp.GetDroppedSubscriptions())
}

// channelzID renders a channelz id, "-" for none.
func channelzID(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// defaultPageSize is how many subchannels `trace list` asks for per call.
const defaultPageSize = 1000

// listAll reads every page of ListSubchannels and returns them as one
// response: the managers of the first page, the subchannels of all.
func listAll(ctx context.Context, c adminv1.AdminServiceClient, target string, pageSize int32) (*adminv1.ListSubchannelsResponse, error) {
	req := &adminv1.ListSubchannelsRequest{Target: target, PageSize: pageSize}
	var all *adminv1.ListSubchannelsResponse
	for {
		resp, err := c.ListSubchannels(ctx, req)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = resp
		} else {
			all.Subchannels = append(all.Subchannels, resp.GetSubchannels()...)
			// The counters of the last page are the freshest.
			all.ActiveWatchers, all.DroppedWatchers, all.DroppedSubscriptions = resp.GetActiveWatchers(), resp.GetDroppedWatchers(), resp.GetDroppedSubscriptions()
		}
		if resp.GetNextPageToken() == "" {
			all.NextPageToken = ""
			return all, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}

// checkLive runs `trace check --addr`.
func checkLive(ctx context.Context, cf *connFlags, grace *time.Duration, target string, timeout time.Duration, stdout, stderr io.Writer) int {
	addr := cf.addr
	conn, err := cf.dial()
	if err != nil {
		fmt.Fprintf(stderr, "leakproof trace check: %v\n", err)
		return exitError
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(cf.outgoing(ctx), timeout)
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
		fmt.Fprintf(w, "%s: subchannel #%d %s (manager %d, target %s): %s\n",
			termsafe.Quote(p.GetKind()), p.GetSubchannelId(), termsafe.Quote(p.GetKey()), p.GetManagerId(), strconv.Quote(p.GetTarget()), termsafe.Escape(p.GetMessage()))
		if sc := p.GetSubchannel(); sc != nil {
			holders := make([]string, len(sc.GetHolders()))
			for i, h := range sc.GetHolders() {
				holders[i] = termsafe.Quote(h)
			}
			fmt.Fprintf(w, "    channelz subchannel %s (channel %s), state %s, refs %d, holders [%s]\n",
				channelzID(sc.GetChannelzSubchannelId()), channelzID(sc.GetChannelzChannelId()), termsafe.Quote(sc.GetState()), sc.GetRefs(), strings.Join(holders, ", "))
			for _, s := range sc.GetSockets() {
				fmt.Fprintf(w, "    socket %d (channelz %s) %s->%s\n", s.GetId(), channelzID(s.GetChannelzSocketId()), termsafe.Quote(s.GetLocalAddress()), termsafe.Quote(s.GetRemoteAddress()))
			}
		}
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

// ended reports whether the watch's context is over: cancelled (Ctrl-C) or
// past its deadline. The deadline is read from the clock too: grpc ends a
// stream whose deadline has passed (as DeadlineExceeded) before the
// context's own timer has marked it done.
func ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}
