package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/secretbroker/secretbroker/internal/cli"
	"github.com/secretbroker/secretbroker/pipeline"
	"github.com/secretbroker/secretbroker/policy"
	"github.com/secretbroker/secretbroker/process"
	"github.com/secretbroker/secretbroker/spec"
)

const runUsage = `inject [flags] [--] COMMAND [ARGS...]   resolve, write, exec (or --supervise)
  inject check                            resolve and report per reference; write nothing
  inject wait [--dir D] [--timeout T]     block until the broker's first delivery (75 on timeout)
  inject policy vault|aws|onepassword     print the minimal grant for the spec
  inject policy audit                     compare the live credentials with the spec
  inject version`

func newRunCommand() *cobra.Command {
	var o runOptions
	c := &cobra.Command{
		Use:           "inject [flags] [--] COMMAND [ARGS...]",
		Short:         "Resolve secrets to tmpfs files, then start the app",
		Long:          "Usage:\n  " + runUsage,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd, args)
		},
	}
	c.Flags().SetInterspersed(false) // everything after COMMAND belongs to the app
	addCommonFlags(c.Flags())
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the plan; fetch, write and start nothing")
	c.Flags().BoolVar(&o.supervise, "supervise", false, "stay as the app's parent (PID 1): forward signals, reap zombies, wipe files on exit")
	c.Flags().BoolVar(&o.signalGroup, "signal-group", false, "with --supervise, forward signals to the app's whole process group")
	c.Flags().StringVar(&o.watch, "watch", "", "with --supervise, watch DIR and signal the app when a file changes")
	c.Flags().StringVar(&o.reloadSignal, "reload-signal", "SIGHUP", "signal sent to the app on a change under --watch")
	c.Flags().BoolVar(&o.restartOnChange, "restart-on-change", false, "restart the app instead of signalling it on a change under --watch")
	// Read by spec.Load with the rest of the declaration (also
	// INJECT_NO_NEW_PRIVILEGES, no_new_privileges:, and so on).
	c.Flags().Bool("no-new-privileges", false, "set no_new_privs before the app starts: setuid bits and file capabilities grant it nothing")
	c.Flags().StringSlice("keep-capabilities", nil, "with --user, capabilities the bounding set keeps (e.g. CAP_NET_BIND_SERVICE); all others are dropped")
	return c
}

func addCommonFlags(f *pflag.FlagSet) {
	spec.AddFlags(f)
	cli.AddLogFlags(f)
}

type runOptions struct {
	dryRun, supervise, signalGroup, restartOnChange bool
	watch, reloadSignal                             string
}

// loadSpec loads the declaration from the command's flags, INJECT_* and
// the environment, logging its warnings. plan is for what only reports
// (check, --dry-run): see spec.LoadPlan.
func loadSpec(cmd *cobra.Command, plan bool) (*spec.Spec, error) {
	log, err := cli.NewLogger(cmd.Flags(), cmd.ErrOrStderr())
	if err != nil {
		return nil, err
	}
	load := spec.Load
	if plan {
		load = spec.LoadPlan
	}
	s, err := load(cmd.Flags())
	if err != nil {
		return nil, cli.Exit(cli.ExitUsage, err)
	}
	s.Logger = log
	for _, w := range s.Warnings {
		log.Warn(w)
	}
	return s, nil
}

// stopSignals turns a terminating signal before the app starts into a
// cancelled context and remembers which signal it was.
func stopSignals() (context.Context, func() syscall.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	var got atomic.Int32
	go func() {
		if s, ok := <-ch; ok {
			got.Store(int32(s.(syscall.Signal)))
			cancel()
		}
	}()
	return ctx, func() syscall.Signal { return syscall.Signal(got.Load()) }, func() { signal.Stop(ch); cancel() }
}

func (o *runOptions) run(cmd *cobra.Command, args []string) error {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 && !o.dryRun {
		return cli.Exit(cli.ExitUsage, fmt.Errorf("no command to run; usage:\n  %s", runUsage))
	}
	if (o.signalGroup || o.watch != "" || o.restartOnChange) && !o.supervise {
		return cli.Exit(cli.ExitUsage, fmt.Errorf("--signal-group, --watch and --restart-on-change need --supervise"))
	}
	watch, err := o.watchOptions()
	if err != nil {
		return err
	}
	ctx, caught, stop := stopSignals()
	defer stop()

	s, err := loadSpec(cmd, o.dryRun)
	if err != nil {
		return err
	}
	log := s.Logger
	r, err := pipeline.New(s, log)
	if err != nil {
		return cli.Exit(cli.ExitUsage, err)
	}
	r.Start = &policy.Start{RunAs: s.User, NoNewPrivs: s.NoNewPrivileges}
	perr := r.CheckPolicy()
	if o.dryRun {
		// A denial shows the plan with each verdict; a policy file that
		// could not be read or parsed shows nothing, since no verdict
		// (least of all "allowed") is known. A template source the read
		// gate refuses is 64, before the policy, as inject would exit.
		if perr != nil && cli.CodeOf(perr) != cli.ExitPolicy {
			return perr
		}
		verdicts, serr := r.Sources()
		printPlan(cmd.OutOrStdout(), r, s, verdicts)
		if cli.CodeOf(serr) == cli.ExitUsage {
			return serr
		}
		return perr
	}
	if perr != nil {
		return perr
	}
	if err := process.CheckDrop(s.User); err != nil {
		return cli.Exit(cli.ExitUsage, err)
	}
	d, err := r.OpenDir()
	if err != nil {
		return err
	}
	defer d.Close()
	if n := d.RemoveStaleTemps(); n > 0 {
		log.Info("removed temporary files an interrupted run left", "count", n)
	}
	// Until the app starts, any failure releases what the providers hold
	// alive (a Vault login token, dynamic-secret leases): nothing will use it.
	handedOff := false
	defer func() {
		if !handedOff {
			r.Release()
		}
	}()
	interrupted := func() error {
		if sig := caught(); sig != 0 {
			n := len(d.Written())
			if werr := d.Wipe(); werr != nil {
				log.Error("cannot remove written files", "err", werr)
			}
			log.Warn("stopped by a signal before the app started; removed what was written", "signal", sig.String(), "removed", n, "exit", 128+int(sig))
			return exitQuietly(128 + int(sig))
		}
		return nil
	}
	_, err = r.Deliver(ctx, pipeline.Delivery{Mode: pipeline.Inject, Dir: d})
	defer r.WipeValues()
	if err != nil {
		if ierr := interrupted(); ierr != nil {
			return ierr
		}
		return err
	}
	env, err := r.AppEnv(d)
	if err != nil {
		d.Wipe()
		return err
	}
	path, err := process.LookPath(args[0], env)
	if err != nil {
		d.Wipe()
		return err
	}
	if err := interrupted(); err != nil {
		return err
	}
	log.Info("secrets delivered", "count", len(d.Written()), "dir", d.Path)
	cli.NoteFilesOutliveExec(log, d.Path, len(d.Written()), o.supervise)
	if err := r.Handoff(ctx, o.supervise); err != nil {
		d.Wipe()
		return cli.Exit(cli.ExitProvider, err)
	}
	r.WipeValues()
	// From here this goroutine's OS thread is the app's: Confine locks it.
	if err := process.Confine(process.Confinement{User: s.User, NoNewPrivs: s.NoNewPrivileges, KeepCaps: s.KeepCapabilities}); err != nil {
		d.Wipe()
		return cli.Exit(cli.ExitUsage, err)
	}
	handedOff = true // from here the app (or supervise's own cleanup) owns them
	if !o.supervise {
		stop()
		signal.Reset()
		d.Close()
		err := process.Exec(path, args, env) // returns only on failure
		r.Release()
		return err
	}
	stop()
	code, err := superviseWatch(watch)(path, args, env, process.SuperviseOptions{
		SignalGroup: o.signalGroup,
		Logger:      log,
		Started:     func(ctx context.Context, pid int) { r.Keep(ctx) },
	})
	r.Release()
	if werr := d.Wipe(); werr != nil {
		log.Error("cannot remove secret files", "err", werr)
	}
	if err != nil {
		return err
	}
	return exitQuietly(code)
}

// printPlan prints --dry-run's table: what would be fetched and written,
// and what the policy says. It prints no value (nothing was fetched).
func printPlan(w io.Writer, r *pipeline.Run, s *spec.Spec, sources []error) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	owner := "inject's user"
	if s.User != nil {
		owner = s.User.String()
	}
	fmt.Fprintf(tw, "SECRET\tREFERENCE\tPROVIDER\tFILE\tMODE\tOWNER\tPOLICY\n")
	for _, sec := range s.Secrets {
		file := s.Dir + "/" + sec.Name
		if sec.EnvVar != "" {
			file += " (" + sec.EnvVar + ")"
		}
		if sec.ExposeAs != "" {
			file += " +env " + sec.ExposeAs
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%#o\t%s\t%s\n", sec.Name, sec.Ref.Canonical(), sec.Ref.Scheme, file, sec.Mode, owner, r.Policies.Verdict(sec.Ref, r.Identity(sec.Ref)))
	}
	for i, t := range s.Templates {
		// The POLICY column of a template is the read gate's verdict on
		// its source (which includes the guardrail).
		_, why := sourceVerdict(t, sources[i])
		fmt.Fprintf(tw, "%s\t(template %s)\t-\t%s\t%#o\t%s\t%s\n", t.Dest, t.Source, s.Dir+"/"+t.Dest, t.Mode, owner, why)
	}
	tw.Flush()
	if len(s.Secrets) == 0 && len(s.Templates) == 0 {
		fmt.Fprintln(w, "(no secrets declared)")
	}
	if len(s.StripEnv) > 0 {
		fmt.Fprintf(w, "strip from the app's environment: %s\n", strings.Join(s.StripEnv, ", "))
	}
}
