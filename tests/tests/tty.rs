//! The root tier for terminals: `ns-pty` driven through a real terminal (a private `tmux`
//! server), through pipes, and behind `runc --console-socket`.
//!
//! Every test runs as root and fails (never skips) when `tmux` or `runc` is missing. A test
//! makes its own temp dir; the tmux server's socket lives in it and only that server is ever
//! killed (by its own `kill-server`, then waited for by pid); a runc container gets a unique id,
//! a state root in the temp dir and a cgroup path relative to the test's own cgroup, and is
//! removed with `runc delete -f`. Every wait is bounded ([`TIMEOUT`]); nothing measures time.
//!
//! The tests that need `ns-exec` to run a `tty: true` container (the lead's integration of
//! `ns_pty` and `ns_init::console`) are in [`needs_integration`], ignored until then.

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use ns_tests::{Invocation, Snapshot, TIMEOUT, TempDir, bin, cgroup_dirs_named, require_root};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Interval of the bounded polling loops.
const POLL: Duration = Duration::from_millis(20);

/// A number no other test (of this or another run) uses, for names and `sleep` arguments.
fn unique() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` until it gives a value; fails the test with `what()` after [`TIMEOUT`].
fn wait_for<T>(mut check: impl FnMut() -> Option<T>, what: impl Fn() -> String) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        if start.elapsed() > TIMEOUT {
            panic!("timed out waiting for {}", what());
        }
        std::thread::sleep(POLL);
    }
}

/// The pids whose argv is exactly `argv`.
fn pids_with_argv(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// Whether process `pid` still exists (and is not a zombie).
fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// The settings of the terminal `tty`, read without making it anyone's controlling terminal.
fn termios_of(tty: &str) -> nix::sys::termios::Termios {
    let fd = nix::fcntl::open(
        tty,
        OFlag::O_RDONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {tty}: {e}"));
    nix::sys::termios::tcgetattr(&fd).unwrap_or_else(|e| panic!("tcgetattr {tty}: {e}"))
}

/// A private tmux server with one window running an interactive `sh` (the "outer terminal"),
/// in its own temp dir. Dropping it kills that server, and only it, and waits until it is gone.
struct Tmux {
    dir: TempDir,
    socket: PathBuf,
    server: i32,
}

impl Tmux {
    /// Starts the server with a `cols`×`rows` window and no status line.
    fn start(cols: u16, rows: u16) -> Tmux {
        require_root();
        let dir = TempDir::new("tty");
        let socket = dir.path().join("tmux.sock");
        let shell = "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=xterm \
                     PS1='outer$ ' sh";
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let dir_arg = dir
            .path()
            .to_str()
            .expect("temp dirs are UTF-8")
            .to_string();
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x"])
            .args([
                cols.as_str(),
                "-y",
                rows.as_str(),
                "-c",
                dir_arg.as_str(),
                shell,
            ])
            .args([";", "set-option", "-g", "status", "off"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("run tmux: {e}: the tty tests need the tmux package (apt-get install tmux)")
            });
        assert!(out.status.success(), "tmux new-session: {out:?}");
        let mut tmux = Tmux {
            dir,
            socket,
            server: 0,
        };
        tmux.server = tmux.query("#{pid}").parse().expect("tmux server pid");
        tmux.wait_screen("outer$");
        tmux
    }

    /// Runs one tmux command against our server; returns its stdout.
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A format of the window's pane (`#{pane_tty}`, `#{pane_height}`...).
    fn query(&self, format: &str) -> String {
        self.cmd(&["display-message", "-p", "-t", "t", format])
            .trim()
            .to_string()
    }

    /// The outer terminal's size, as `stty size` prints it (`rows cols`).
    fn size(&self) -> String {
        format!(
            "{} {}",
            self.query("#{pane_height}"),
            self.query("#{pane_width}")
        )
    }

    /// Types `text` and Enter.
    fn type_line(&self, text: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", text]);
        self.cmd(&["send-keys", "-t", "t", "Enter"]);
    }

    /// Presses one key (`C-c`, `Enter`).
    fn key(&self, key: &str) {
        self.cmd(&["send-keys", "-t", "t", key]);
    }

    /// Everything on the screen and in the scrollback, wrapped lines joined.
    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-"])
    }

    /// Waits until a line of the screen is exactly `line` (trailing blanks ignored).
    fn wait_line(&self, line: &str) {
        wait_for(
            || {
                self.screen()
                    .lines()
                    .any(|l| l.trim_end() == line)
                    .then_some(())
            },
            || format!("the line {line:?} on the screen:\n{}", self.screen()),
        )
    }

    /// Waits until `needle` is on the screen.
    fn wait_screen(&self, needle: &str) {
        wait_for(
            || self.screen().contains(needle).then_some(()),
            || format!("{needle:?} on the screen:\n{}", self.screen()),
        )
    }

    /// A file of the temp dir, by name.
    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("temp dirs are UTF-8")
            .to_string()
    }

    /// Waits for the file `name` to exist and end with a newline; returns it, trimmed.
    fn wait_file(&self, name: &str) -> String {
        let path = self.path(name);
        wait_for(
            || {
                fs::read_to_string(&path)
                    .ok()
                    .filter(|s| s.ends_with('\n'))
                    .map(|s| s.trim().to_string())
            },
            || format!("{path}; screen:\n{}", self.screen()),
        )
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .stdin(Stdio::null())
            .output();
        if self.server > 0 {
            let start = Instant::now();
            while alive(self.server) && start.elapsed() < TIMEOUT {
                std::thread::sleep(POLL);
            }
            if alive(self.server) && !std::thread::panicking() {
                panic!("tmux server {} did not end", self.server);
            }
        }
    }
}

/// The ns-pty binary, as a string for typed command lines.
fn ns_pty() -> String {
    bin("ns-pty").to_str().expect("UTF-8 path").to_string()
}

// --- chain form in a real terminal -------------------------------------------------------------

/// `ns-pty -- CMD` gives CMD a pts of its own as stdin, stdout and controlling terminal, in a
/// session it leads, with the pts also at fd 3 announced by `NS_CONSOLE_FD=3`.
#[test]
fn the_command_gets_its_own_terminal() {
    let t = Tmux::start(100, 30);
    let outer_tty = t.query("#{pane_tty}");
    let script = format!(
        "tty > {tty}; [ -t 0 ] && [ -t 1 ] && echo yes > {t01}; \
         read -r pid comm state ppid pgrp sid ttynr rest < /proc/$$/stat; \
         [ $sid = $pid ] && echo leader $ttynr > {stat}; \
         echo \"$NS_CONSOLE_FD $(readlink /proc/$$/fd/3)\" > {fd3}",
        tty = t.path("tty"),
        t01 = t.path("t01"),
        stat = t.path("stat"),
        fd3 = t.path("fd3"),
    );
    t.type_line(&format!("{} -- sh -c '{script}'; echo rc=$?", ns_pty()));
    t.wait_line("rc=0");
    let tty = t.wait_file("tty");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    assert_ne!(
        tty, outer_tty,
        "the command must not get the caller's terminal"
    );
    assert_eq!(t.wait_file("t01"), "yes");
    let stat = t.wait_file("stat");
    let (leader, tty_nr) = stat.split_once(' ').expect("two fields");
    assert_eq!(leader, "leader", "the command leads its own session");
    assert_ne!(tty_nr, "0", "the pts is its controlling terminal");
    assert_eq!(t.wait_file("fd3"), format!("3 {tty}"));
}

/// `stty size` inside equals the outer window, and follows it when the window is resized.
#[test]
fn window_size_is_copied_and_followed() {
    let t = Tmux::start(100, 30);
    let inner = t.path("inner");
    // Each Enter makes the inner shell write its current size.
    let script = format!(
        "stty size > {inner}.t && mv {inner}.t {inner}; \
         while read x; do stty size > {inner}.t && mv {inner}.t {inner}; done"
    );
    t.type_line(&format!("{} -- sh -c '{script}'; echo rc=$?", ns_pty()));
    let first = t.wait_file("inner");
    assert_eq!(first, t.size());
    assert_eq!(first, "30 100");

    t.cmd(&["resize-window", "-t", "t", "-x", "77", "-y", "21"]);
    let want = t.size();
    assert_eq!(want, "21 77");
    // The resize reaches ns-pty as SIGWINCH; ask again until the inner size caught up.
    wait_for(
        || {
            t.key("Enter");
            std::thread::sleep(POLL);
            (fs::read_to_string(&inner).ok()?.trim() == want).then_some(())
        },
        || format!("inner size {want}, have {:?}", fs::read_to_string(&inner)),
    );
    t.key("C-d");
    t.wait_line("rc=0");
}

/// Typed input is echoed by the inner terminal and runs; `exit 7` comes back as status 7.
#[test]
fn typed_input_echoes_and_runs() {
    let t = Tmux::start(100, 30);
    t.type_line(&format!(
        "{} -- env PS1='in''ner$ ' sh; echo outer-rc=$?",
        ns_pty()
    ));
    t.wait_screen("inner$ ");
    t.type_line("echo ran-$((6*7))");
    t.wait_line("ran-42");
    assert!(
        t.screen().contains("inner$ echo ran-$((6*7))"),
        "the typed line is echoed:\n{}",
        t.screen()
    );
    t.type_line("exit 7");
    t.wait_line("outer-rc=7");
}

/// Ctrl-C interrupts a `sleep` running in the inner shell, and the shell goes on.
#[test]
fn ctrl_c_interrupts_the_foreground_command() {
    let t = Tmux::start(100, 30);
    t.type_line(&format!(
        "{} -- env PS1='in''ner$ ' sh; echo outer-rc=$?",
        ns_pty()
    ));
    t.wait_screen("inner$ ");
    let n = unique();
    t.type_line(&format!("sleep {n}"));
    let pid = wait_for(
        || pids_with_argv(&["sleep", &n]).first().copied(),
        || format!("sleep {n} to run"),
    );
    t.key("C-c");
    wait_for(
        || (!alive(pid)).then_some(()),
        || format!("sleep {n} ({pid}) to end after ^C"),
    );
    t.type_line("echo alive-$((1+1))");
    t.wait_line("alive-2");
    t.type_line("exit");
    t.wait_line("outer-rc=0");
}

/// The caller's terminal is raw while ns-pty runs and exactly as before (`stty -g`) after it
/// ends, with the command's status passed through.
#[test]
fn terminal_is_restored_after_a_normal_exit() {
    let t = Tmux::start(100, 30);
    let pane = t.query("#{pane_tty}");
    t.type_line(&format!(
        "stty -g > {b}; {p} -- sh -c 'read x; exit 3'; echo $? > {rc}; stty -g > {a}",
        b = t.path("before"),
        p = ns_pty(),
        rc = t.path("rc"),
        a = t.path("after"),
    ));
    let before = t.wait_file("before");
    wait_for(
        || {
            let lflag = termios_of(&pane).local_flags;
            use nix::sys::termios::LocalFlags as L;
            (!lflag.intersects(L::ICANON | L::ECHO | L::ISIG)).then_some(())
        },
        || "the outer terminal to be raw while ns-pty runs".to_string(),
    );
    t.key("Enter");
    assert_eq!(t.wait_file("rc"), "3");
    assert_eq!(t.wait_file("after"), before);
}

/// `SIGTERM` to ns-pty is forwarded to the command (128+15 comes back), and the terminal is
/// restored exactly.
#[test]
fn terminal_is_restored_after_sigterm() {
    let t = Tmux::start(100, 30);
    let pane = t.query("#{pane_tty}");
    let n = unique();
    let p = ns_pty();
    t.type_line(&format!(
        "stty -g > {b}; {p} -- sleep {n}; echo $? > {rc}; stty -g > {a}",
        b = t.path("before"),
        rc = t.path("rc"),
        a = t.path("after"),
    ));
    let before = t.wait_file("before");
    let pid = wait_for(
        || pids_with_argv(&[&p, "--", "sleep", &n]).first().copied(),
        || format!("ns-pty -- sleep {n} to run"),
    );
    wait_for(
        || pids_with_argv(&["sleep", &n]).first().copied(),
        || format!("sleep {n} to run"),
    );
    let raw = termios_of(&pane).local_flags;
    assert!(!raw.contains(nix::sys::termios::LocalFlags::ICANON));
    kill(Pid::from_raw(pid), Signal::SIGTERM).expect("signal ns-pty");
    assert_eq!(t.wait_file("rc"), "143");
    assert_eq!(t.wait_file("after"), before);
}

/// `TIOCSTI` from the command reaches only its own pts, never the caller's shell: the same
/// injection run directly in the outer shell does run there (the control), through ns-pty
/// it does not (security-and-hygiene.md §1.6).
#[test]
fn injected_input_stays_on_the_inner_terminal() {
    let t = Tmux::start(100, 30);
    let inject =
        |text: &str| format!("perl -e 'ioctl(STDIN, 0x5412, $_) for split //, \"{text}\\n\"'");
    // Control: injected into the outer terminal, the outer shell runs it.
    t.type_line(&inject(&format!("touch {}", t.path("control"))));
    wait_for(
        || Path::new(&t.path("control")).exists().then_some(()),
        || format!("the control injection to run:\n{}", t.screen()),
    );
    let canary = t.path("canary");
    t.type_line(&format!(
        "{} -- {}; echo rc=$?",
        ns_pty(),
        inject(&format!("touch {canary}"))
    ));
    t.wait_line("rc=0");
    // The outer shell has read everything up to here: an injection would have run by now.
    t.type_line("echo after-$((5+5))");
    t.wait_line("after-10");
    assert!(
        !Path::new(&canary).exists(),
        "the injection reached the outer shell"
    );
}

/// Through the console socket, a runc container's `stty size` is the outer window's.
#[test]
fn console_socket_copies_the_window_size() {
    let b = Bundle::new(&["sh", "-c", "stty size; read x"]);
    let t = Tmux::start(88, 26);
    let socket = b.path("console.sock");
    let line = b.run_args(&socket).join(" ");
    t.type_line(&format!(
        "{} --console-socket {socket} -- {line}; echo rc=$?",
        ns_pty()
    ));
    t.wait_line("26 88");
    t.key("Enter");
    t.wait_line("rc=0");
}

/// Stopped from outside (`SIGTSTP`), ns-pty gives the outer shell its terminal settings back;
/// `fg` puts the terminal in raw mode again and the relay goes on.
#[test]
fn stop_and_fg_restore_and_reapply_raw_mode() {
    let t = Tmux::start(100, 30);
    let pane = t.query("#{pane_tty}");
    let p = ns_pty();
    t.type_line(&format!("stty -g > {}", t.path("before")));
    let before = t.wait_file("before");
    let cooked = termios_of(&pane).local_flags;
    let n = unique();
    // Alone on its line: a stopped job ends a list in the outer shell.
    t.type_line(&format!("{p} -- sh -c 'read x; echo got-$x'"));
    let pid = wait_for(
        || {
            pids_with_argv(&[&p, "--", "sh", "-c", "read x; echo got-$x"])
                .first()
                .copied()
        },
        || "ns-pty to run".to_string(),
    );
    let is_raw = || {
        let l = termios_of(&pane).local_flags;
        !l.contains(nix::sys::termios::LocalFlags::ICANON)
    };
    wait_for(|| is_raw().then_some(()), || "raw mode".to_string());
    kill(Pid::from_raw(pid), Signal::SIGTSTP).expect("signal ns-pty");
    // The outer shell sees the job stop and prompts again, with its own settings.
    wait_for(
        || (termios_of(&pane).local_flags == cooked).then_some(()),
        || format!("the outer settings back while stopped:\n{}", t.screen()),
    );
    t.type_line(&format!("stty -g > {}", t.path("stopped")));
    assert_eq!(t.wait_file("stopped"), before);
    t.type_line("fg");
    wait_for(
        || is_raw().then_some(()),
        || "raw mode after fg".to_string(),
    );
    t.type_line(&format!("word{n}"));
    t.wait_line(&format!("got-word{n}"));
    t.type_line("echo fg-rc=$?");
    t.wait_line("fg-rc=0");
    assert_eq!(termios_of(&pane).local_flags, cooked);
}

// --- chain form through pipes ------------------------------------------------------------------

/// The last bytes a command writes right before it exits always arrive, even without a
/// newline, over many runs.
#[test]
fn the_last_line_is_never_lost() {
    require_root();
    for round in 0..20 {
        let out = Invocation::new(bin("ns-pty"))
            .args([
                "--",
                "sh",
                "-c",
                "i=0; while [ $i -lt 500 ]; do echo line-$i; i=$((i+1)); done; printf last-bytes",
            ])
            .run();
        out.expect_code(0);
        assert!(
            out.stdout.ends_with("line-499\r\nlast-bytes"),
            "round {round}: tail {:?}",
            &out.stdout[out.stdout.len().saturating_sub(40)..]
        );
        assert_eq!(out.stdout.matches("\r\n").count(), 500, "round {round}");
    }
}

/// Statuses pass through: the command's own, 128+N for a signal, 127 when it is not found.
#[test]
fn exit_statuses_pass_through() {
    require_root();
    let run = |cmd: &[&str]| Invocation::new(bin("ns-pty")).arg("--").args(cmd).run();
    run(&["sh", "-c", "exit 42"]).expect_code(42);
    run(&["sh", "-c", "kill -KILL $$"]).expect_code(137);
    run(&["sh", "-c", "kill -TERM $$"]).expect_code(143);
    let out = run(&["/nonexistent/ns-tools-test"]);
    out.expect_code(127);
    assert_eq!(out.stderr_lines().len(), 1, "{}", out.dump());
    assert!(out.stderr.starts_with("ns-pty: exec "), "{}", out.dump());
}

/// Without a terminal, piped input runs and its end ends the shell (as `^D` would).
#[test]
fn piped_input_runs_and_its_end_ends_the_command() {
    require_root();
    let out = Invocation::new(bin("ns-pty"))
        .args(["--", "sh"])
        .stdin_bytes(b"echo piped-$((2+3))\n")
        .run();
    out.expect_code(0);
    // The shell's prompt may come before or after the echoed line: look for the result only
    // (the echoed command reads `piped-$((2+3))`).
    assert!(out.stdout.contains("piped-5"), "{}", out.dump());
}

// --- console socket, behind runc ---------------------------------------------------------------

/// A busybox OCI bundle in a temp dir and a runc state root beside it; the container, if
/// created, is removed on drop (`runc delete -f`), and nothing of it may remain.
struct Bundle {
    dir: TempDir,
    id: String,
    baseline: Snapshot,
}

impl Bundle {
    fn new(args: &[&str]) -> Bundle {
        require_root();
        let dir = TempDir::new("runc");
        let rootfs = dir.path().join("rootfs");
        let script = ns_tests::workspace_root().join("scripts/mkrootfs.sh");
        let ok = Command::new("sh")
            .arg(&script)
            .arg(&rootfs)
            .stdout(Stdio::null())
            .status()
            .expect("run mkrootfs.sh");
        assert!(ok.success(), "mkrootfs.sh failed");
        let spec = Command::new("runc")
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| {
                panic!("run runc: {e}: the console-socket tests need the runc package")
            });
        assert!(spec.status.success(), "runc spec: {spec:?}");
        let id = format!("nstest-runc-{}", unique());
        let config_path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&fs::read(&config_path).expect("read config.json"))
                .expect("parse config.json");
        config["process"]["args"] = serde_json::json!(args);
        config["process"]["terminal"] = serde_json::json!(true);
        // Relative: runc puts it below its own cgroup, which is this test's.
        config["linux"]["cgroupsPath"] = serde_json::json!(id);
        fs::write(&config_path, config.to_string()).expect("write config.json");
        Bundle {
            dir,
            id,
            baseline: Snapshot::take(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir
            .path()
            .join(name)
            .to_str()
            .expect("UTF-8")
            .to_string()
    }

    /// `runc --root R run -d --bundle B --console-socket S ID`.
    fn run_args(&self, socket: &str) -> Vec<String> {
        [
            "runc",
            "--root",
            &self.path("state"),
            "run",
            "-d",
            "--bundle",
            &self.path(""),
            "--console-socket",
            socket,
            &self.id,
        ]
        .map(String::from)
        .to_vec()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = Command::new("runc")
            .args(["--root", &self.path("state"), "delete", "-f", &self.id])
            .stdin(Stdio::null())
            .output();
        if std::thread::panicking() {
            return;
        }
        let cgroups = cgroup_dirs_named(&self.id);
        assert!(cgroups.is_empty(), "runc left cgroups: {cgroups:?}");
        let diff = Snapshot::take().diff(&self.baseline);
        assert!(diff.is_empty(), "host state changed: {diff:?}");
    }
}

/// `ns-pty --console-socket S -- runc run -d --console-socket S ID` receives the master runc
/// sends, relays the container's console (its own pts, a terminal on stdin) to the last byte,
/// and removes the socket.
#[test]
fn console_socket_relays_a_runc_container() {
    let b = Bundle::new(&[
        "sh",
        "-c",
        "tty; [ -t 0 ] && echo stdin-is-a-tty; echo sum-$((40+2)); printf no-newline-tail",
    ]);
    let socket = b.path("console.sock");
    let out = Invocation::new(bin("ns-pty"))
        .args(["--console-socket", &socket, "--"])
        .args(b.run_args(&socket))
        .run();
    out.expect_code(0);
    let lines: Vec<&str> = out.stdout.split("\r\n").collect();
    assert_eq!(
        lines,
        ["/dev/pts/0", "stdin-is-a-tty", "sum-42", "no-newline-tail"],
        "{}",
        out.dump()
    );
    assert!(!Path::new(&socket).exists(), "the socket file is removed");
}

/// Input reaches a runc container through the console socket form too, and the console's end
/// (the container exiting) ends ns-pty.
#[test]
fn console_socket_relays_input() {
    let b = Bundle::new(&["sh", "-c", "read line; echo got-$line"]);
    let socket = b.path("console.sock");
    let out = Invocation::new(bin("ns-pty"))
        .args(["--console-socket", &socket, "--"])
        .args(b.run_args(&socket))
        .stdin_bytes(b"hello\n")
        .run();
    out.expect_code(0);
    assert!(
        out.stdout.lines().any(|l| l.trim_end() == "got-hello"),
        "{}",
        out.dump()
    );
}

/// A runtime that fails before it sends a console ends ns-pty with the runtime's status, and
/// the socket file is gone.
#[test]
fn console_socket_ends_with_a_failing_runtime() {
    require_root();
    let dir = TempDir::new("consock");
    let socket = dir.path().join("c.sock");
    let out = Invocation::new(bin("ns-pty"))
        .arg("--console-socket")
        .arg(&socket)
        .args(["--", "sh", "-c", "exit 9"])
        .run();
    out.expect_code(9);
    assert!(!socket.exists());
}

// --- ns-exec with `tty: true` ------------------------------------------------------------------

/// Containers with `tty: true`, run by ns-exec in a real terminal: ns-exec relays a pty of its
/// own (ns_pty), or the console ns-pty hands it; ns-init makes the pts the container's
/// terminal and `/dev/console` (ns_init::console).
mod through_ns_exec {
    use super::*;
    use ns_tests::Fixture;

    /// A fixture with `tty: true`, and the ns-exec command line that runs `script` in it.
    fn tty_fixture() -> Fixture {
        require_root();
        let fx = Fixture::new();
        fx.edit_config(|c| c["tty"] = serde_json::json!(true));
        fx
    }

    fn ns_exec_line(fx: &Fixture, cmd: &str) -> String {
        format!(
            "{} --config {} --root {} --name {} -- {cmd}",
            bin("ns-exec").display(),
            fx.config_path().display(),
            fx.state_root().display(),
            fx.name(),
        )
    }

    /// Inside, `tty` prints a pts of the container's own devpts (`/dev/pts/N`: ns-init
    /// allocates the console there and sends the master out), stdin is a terminal,
    /// `/dev/console` is that same pts (a pts device: major 136-143), the shell leads its
    /// session with the pts as controlling terminal, and `stty size` equals the outer window.
    #[test]
    fn the_container_gets_a_console() {
        let t = Tmux::start(90, 25);
        let fx = tty_fixture();
        let script = "tty; [ -t 0 ] && echo stdin-tty; \
                      [ /dev/console -ef \"$(tty)\" ] && echo console-same; \
                      echo major-$(stat -L -c %t /dev/console); \
                      stty size; read -r pid comm state ppid pgrp sid ttynr rest < /proc/$$/stat; \
                      [ $sid = $pid ] && echo leader $ttynr";
        t.type_line(&format!(
            "{}; echo rc=$?",
            ns_exec_line(&fx, &format!("sh -c '{script}'"))
        ));
        t.wait_line("rc=0");
        let screen = t.screen();
        assert!(
            screen.lines().any(|l| l.starts_with("/dev/pts/")),
            "{screen}"
        );
        // The major number in hex: 0x88-0x8f are the pts majors 136-143.
        assert!(screen.lines().any(|l| l.starts_with("major-8")), "{screen}");
        for line in ["stdin-tty", "console-same", "25 90"] {
            assert!(
                screen.lines().any(|l| l.trim_end() == line),
                "{line}: {screen}"
            );
        }
        assert!(
            screen
                .lines()
                .any(|l| l.starts_with("leader ") && !l.ends_with(" 0")),
            "{screen}"
        );
    }

    /// The window size follows a resize; typed input echoes and runs; Ctrl-C interrupts a
    /// sleep and the shell goes on; the status of `exit 5` comes back.
    #[test]
    fn interactive_shell_in_a_container() {
        let t = Tmux::start(100, 30);
        let fx = tty_fixture();
        t.type_line(&format!(
            "{}; echo outer-rc=$?",
            ns_exec_line(&fx, "env PS1='c''tr$ ' sh")
        ));
        t.wait_screen("ctr$ ");
        t.type_line("echo typed-$((3*3))");
        t.wait_line("typed-9");
        t.cmd(&["resize-window", "-t", "t", "-x", "81", "-y", "23"]);
        wait_for(
            || {
                t.type_line("stty size");
                std::thread::sleep(POLL);
                t.screen()
                    .lines()
                    .any(|l| l.trim_end() == "23 81")
                    .then_some(())
            },
            || format!("the new size inside:\n{}", t.screen()),
        );
        let n = unique();
        t.type_line(&format!("sleep {n}"));
        let pid = wait_for(
            || pids_with_argv(&["sleep", &n]).first().copied(),
            || format!("sleep {n} to run"),
        );
        t.key("C-c");
        wait_for(
            || (!alive(pid)).then_some(()),
            || "the sleep to end after ^C".to_string(),
        );
        t.type_line("echo still-$((2+2))");
        t.wait_line("still-4");
        t.type_line("exit 5");
        t.wait_line("outer-rc=5");
    }

    /// `stty -g` of the outer terminal is the same before and after, also when ns-exec is
    /// sent SIGTERM (forwarded: 143 comes back).
    #[test]
    fn terminal_is_restored_when_ns_exec_is_terminated() {
        let t = Tmux::start(100, 30);
        let fx = tty_fixture();
        let n = unique();
        t.type_line(&format!(
            "stty -g > {b}; {run}; echo $? > {rc}; stty -g > {a}",
            b = t.path("before"),
            // The container's pid 1 ignores signals it has no handler for (pid_namespaces(7)),
            // so the command traps SIGTERM to die of the one ns-exec forwards.
            run = ns_exec_line(
                &fx,
                &format!("sh -c \"trap 'exit 143' TERM; sleep {n} & wait\""),
            ),
            rc = t.path("rc"),
            a = t.path("after"),
        ));
        let before = t.wait_file("before");
        wait_for(
            || pids_with_argv(&["sleep", &n]).first().copied(),
            || format!("sleep {n} to run"),
        );
        let ns_exec = bin("ns-exec");
        let pid = wait_for(
            || {
                let path = ns_exec.to_str()?;
                fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
                    let pid: i32 = e.file_name().to_str()?.parse().ok()?;
                    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                    let text = String::from_utf8_lossy(&cmdline);
                    (text.starts_with(path) && text.contains(fx.name())).then_some(pid)
                })
            },
            || "ns-exec to run".to_string(),
        );
        kill(Pid::from_raw(pid), Signal::SIGTERM).expect("signal ns-exec");
        assert_eq!(t.wait_file("rc"), "143");
        assert_eq!(t.wait_file("after"), before);
    }

    /// `ns-pty -- ns-exec ...`: ns-exec takes the console ns-pty announced (`NS_CONSOLE_FD`)
    /// and the container's shell gets that very pts as its terminal and `/dev/console`, with
    /// Ctrl-C reaching the container's foreground group.
    #[test]
    fn ns_pty_in_front_of_ns_exec() {
        let t = Tmux::start(100, 30);
        let fx = tty_fixture();
        t.type_line(&format!(
            "{} -- {}; echo outer-rc=$?",
            ns_pty(),
            ns_exec_line(&fx, "env PS1='c''tr$ ' sh")
        ));
        t.wait_screen("ctr$ ");
        t.type_line("[ /dev/console -ef \"$(tty)\" ] && echo same-console");
        t.wait_line("same-console");
        let n = unique();
        t.type_line(&format!("sleep {n}"));
        let pid = wait_for(
            || pids_with_argv(&["sleep", &n]).first().copied(),
            || format!("sleep {n} to run"),
        );
        t.key("C-c");
        wait_for(
            || (!alive(pid)).then_some(()),
            || "the sleep to end after ^C".to_string(),
        );
        t.type_line("exit 6");
        t.wait_line("outer-rc=6");
    }

    /// The last line of a container's output is never lost through the console, and its
    /// status passes through.
    #[test]
    fn container_tail_and_status_through_the_console() {
        let fx = tty_fixture();
        for _ in 0..10 {
            let out = fx.run(&["sh", "-c", "seq 1 300; printf tail-bytes; exit 4"]);
            out.expect_code(4);
            assert!(out.stdout.ends_with("300\r\ntail-bytes"), "{}", out.dump());
        }
    }
}
