package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/agentpdp/agentpdp/gen/go/agentpdp/v1"
)

// adminFlags are shared by the commands that talk to --admin-listen.
type adminFlags struct {
	addr    string
	timeout time.Duration
	json    bool
}

func (f *adminFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.addr, "addr", envOr("PDP_ADMIN_ADDR", "127.0.0.1:8182"), "admin address of a running pdp (PDP_ADMIN_ADDR)")
	cmd.PersistentFlags().DurationVar(&f.timeout, "timeout", 5*time.Second, "per-call timeout")
	cmd.PersistentFlags().BoolVar(&f.json, "json", false, "print JSON")
}

func (f *adminFlags) dial() (*grpc.ClientConn, error) {
	return grpc.NewClient(f.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// currentUser names the operator for the audit trail.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return envOr("USER", "operator")
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func newApprovalsCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{Use: "approvals", Short: "List, approve, reject and watch pending approvals"}
	f.register(cmd)
	var agent, tool string
	list := &cobra.Command{Use: "list", Short: "List pending approvals", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(func(ctx context.Context, cc *grpc.ClientConn) error {
				resp, err := pb.NewApprovalServiceClient(cc).ListPending(ctx, &pb.ListPendingRequest{AgentId: agent, Tool: tool})
				if err != nil {
					return err
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), resp)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tAGENT\tPRINCIPAL\tTOOL\tEXPIRES\tWHY")
				for _, a := range resp.Approvals {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Id, a.AgentId, a.PrincipalId, a.Tool,
						a.ExpiresAt.AsTime().Local().Format(time.DateTime), approvalWhy(a))
				}
				return tw.Flush()
			})
		}}
	list.Flags().StringVar(&agent, "agent", "", "only this agent")
	list.Flags().StringVar(&tool, "tool", "", "only this tool")
	cmd.AddCommand(list, decideCmd(f, "approve", true), decideCmd(f, "reject", false), watchCmd(f))
	return cmd
}

func approvalWhy(a *pb.Approval) string {
	var msgs []string
	for _, r := range a.Reasons {
		if r.Effect == pb.Effect_EFFECT_REQUIRE_APPROVAL {
			msgs = append(msgs, r.RuleId)
		}
	}
	return strings.Join(msgs, ",")
}

func decideCmd(f *adminFlags, verb string, approve bool) *cobra.Command {
	var approver, note string
	cmd := &cobra.Command{Use: verb + " APPROVAL_ID", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a pending approval",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.with(func(ctx context.Context, cc *grpc.ClientConn) error {
				a, err := pb.NewApprovalServiceClient(cc).Decide(ctx, &pb.DecideRequest{
					ApprovalId: args[0], Approve: approve, Approver: approver, Note: note})
				if err != nil {
					return err
				}
				if f.json {
					return printJSON(cmd.OutOrStdout(), a)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s by %s\n", a.Id, strings.TrimPrefix(a.Status.String(), "APPROVAL_STATUS_"), a.Approver)
				return nil
			})
		}}
	cmd.Flags().StringVar(&approver, "approver", currentUser(), "who decides (recorded in the audit trail)")
	cmd.Flags().StringVar(&note, "note", "", "why")
	return cmd
}

func watchCmd(f *adminFlags) *cobra.Command {
	var agent string
	cmd := &cobra.Command{Use: "watch", Short: "Stream approvals as they are created and decided (JSON lines)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cc, err := f.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			stream, err := pb.NewApprovalServiceClient(cc).WatchApprovals(cmd.Context(),
				&pb.WatchApprovalsRequest{AgentId: agent, IncludePending: true})
			if err != nil {
				return err
			}
			for {
				ev, err := stream.Recv()
				if err != nil {
					return err
				}
				if err := printJSON(cmd.OutOrStdout(), ev); err != nil {
					return err
				}
			}
		}}
	cmd.Flags().StringVar(&agent, "agent", "", "only this agent")
	return cmd
}

func newAgentsCmd() *cobra.Command {
	f := &adminFlags{}
	cmd := &cobra.Command{Use: "agents", Short: "Suspend, resume and list suspended agents (the kill switch)"}
	f.register(cmd)
	var principal, reason, by string
	var ttl time.Duration
	suspend := &cobra.Command{Use: "suspend AGENT_ID", Short: "Deny every call of an agent (or of one agent for one principal)",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.call(cmd, func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
				return c.SuspendAgent(ctx, &pb.SuspendAgentRequest{AgentId: args[0], PrincipalId: principal,
					Reason: reason, By: by, Ttl: durationpb.New(ttl)})
			})
		}}
	suspend.Flags().StringVar(&principal, "principal", "", "suspend only for this principal")
	suspend.Flags().StringVar(&reason, "reason", "", "why (recorded and returned to the agent)")
	suspend.Flags().StringVar(&by, "by", currentUser(), "who suspends")
	suspend.Flags().DurationVar(&ttl, "for", 0, "lift automatically after this long (default: until resumed)")
	resume := &cobra.Command{Use: "resume AGENT_ID", Short: "Lift a suspension", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.call(cmd, func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
				return c.ResumeAgent(ctx, &pb.ResumeAgentRequest{AgentId: args[0], PrincipalId: principal, By: by})
			})
		}}
	resume.Flags().StringVar(&principal, "principal", "", "resume the suspension for this principal")
	resume.Flags().StringVar(&by, "by", currentUser(), "who resumes")
	list := &cobra.Command{Use: "list", Short: "List suspensions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.call(cmd, func(ctx context.Context, c pb.AdminServiceClient) (proto.Message, error) {
				return c.ListSuspensions(ctx, &pb.ListSuspensionsRequest{})
			})
		}}
	cmd.AddCommand(suspend, resume, list)
	return cmd
}

// call runs one AdminService call and prints its answer as JSON.
func (f *adminFlags) call(cmd *cobra.Command, do func(context.Context, pb.AdminServiceClient) (proto.Message, error)) error {
	return f.with(func(ctx context.Context, cc *grpc.ClientConn) error {
		m, err := do(ctx, pb.NewAdminServiceClient(cc))
		if err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), m)
	})
}

// with runs one unary call on a fresh connection under the --timeout.
func (f *adminFlags) with(do func(context.Context, *grpc.ClientConn) error) error {
	cc, err := f.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	return do(ctx, cc)
}
