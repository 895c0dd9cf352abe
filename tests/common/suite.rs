//! A test binary whose tests need something the machine may lack (PgBouncer,
//! Chromium and ChromeDriver, axe-core, Citus). It runs on `libtest-mimic`
//! (`harness = false` in Cargo.toml) so that a missing prerequisite shows in
//! cargo's own report as
//!
//! ```text
//! test isolation_battery_through_pgbouncer_with_two_instances ... ignored (pgbouncer not found; …)
//! test result: ok. 0 passed; 0 failed; 2 ignored; …
//! ```
//!
//! and never as `ok`. Under `CI` (where `.ci/run` installs everything through
//! `scripts/install-test-deps.sh`) a missing prerequisite fails each test
//! instead.
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     let mut suite = Suite::new(bouncer::missing());
//!     suite::add!(suite, Runtime::CurrentThread, name);
//!     suite.run()
//! }
//! ```

use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, ExitCode};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

/// Adds each async fn named to `suite` under its own name, its body run on
/// `runtime`: `suite::add!(suite, Runtime::CurrentThread, first, second);`.
macro_rules! add {
    ($suite:ident, $runtime:expr, $($test:ident),+ $(,)?) => {
        $($suite.test(stringify!($test), $runtime, $test);)+
    };
}
pub(crate) use add;

/// The tokio runtime a test's body runs on, as `#[tokio::test]` would build it.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // each suite uses the flavours it needs
pub enum Runtime {
    /// `#[tokio::test]`.
    CurrentThread,
    /// `#[tokio::test(flavor = "multi_thread", worker_threads = N)]`.
    MultiThread { worker_threads: usize },
}

impl Runtime {
    fn build(self) -> tokio::runtime::Runtime {
        match self {
            Runtime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            Runtime::MultiThread { worker_threads } => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(worker_threads);
                builder
            }
        }
        .enable_all()
        .build()
        .expect("build the test's tokio runtime")
    }
}

/// The tests of one binary, and what (if anything) they are missing.
pub struct Suite {
    missing: Option<String>,
    trials: Vec<Trial>,
    one_at_a_time: bool,
}

impl Suite {
    /// `missing`: why the suite cannot run here (what is missing and how to
    /// install it), or `None` when it can.
    pub fn new(missing: Option<String>) -> Suite {
        Suite {
            missing,
            trials: Vec::new(),
            one_at_a_time: false,
        }
    }

    /// Runs the tests one after another unless `--test-threads` says
    /// otherwise (for tests that share one cluster-wide resource).
    #[allow(dead_code)] // not every suite needs it
    pub fn one_at_a_time(mut self) -> Suite {
        self.one_at_a_time = true;
        self
    }

    /// Adds a test whose async `body` runs on a fresh `runtime`; a panic in
    /// it fails the test, as with `#[tokio::test]`.
    pub fn test<F, Fut>(&mut self, name: &str, runtime: Runtime, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let missing = self.missing.clone();
        self.trials.push(Trial::ignorable_test(name, move || {
            if let Some(why) = missing {
                return skip(why);
            }
            runtime.build().block_on(body());
            Ok(Completion::Completed)
        }));
    }

    /// Runs the tests selected by the command line (cargo's filters, `--list`,
    /// `--test-threads`…) and reports like the built-in harness.
    pub fn run(self) -> ExitCode {
        let mut args = Arguments::from_args();
        if self.one_at_a_time && args.test_threads.is_none() {
            args.test_threads = Some(1);
        }
        libtest_mimic::run(&args, self.trials).exit_code()
    }
}

/// A program a suite's tests need (PgBouncer, ChromeDriver), listening on a
/// loopback port, with a directory of its own: killed, and the directory
/// removed, when dropped.
#[allow(dead_code)] // not every suite runs one
pub struct Helper {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

#[allow(dead_code)]
impl Helper {
    /// A free loopback port and a fresh directory
    /// `<tmp>/tenantry-<name>-<pid>-<port>` for the program to start with.
    pub fn prepare(name: &str) -> (u16, PathBuf) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("tenantry-{name}-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        (port, dir)
    }

    /// `child`, once it accepts connections on `port`: `what` did not start
    /// if it does not within `seconds`.
    pub fn started(child: Child, (port, dir): (u16, PathBuf), seconds: u64, what: &str) -> Helper {
        let helper = Helper { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(seconds);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "{what} did not start; see {}",
                helper.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        helper
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A test that cannot run here: ignored with the reason on a developer's
/// machine, failed under `CI`, which must run every suite.
fn skip(why: String) -> Result<Completion, Failed> {
    if std::env::var_os("CI").is_some() {
        Err(format!(
            "CI must run this test, but {why} (scripts/install-test-deps.sh installs every prerequisite)"
        )
        .into())
    } else {
        Ok(Completion::ignored_with(format!(
            "{why}; or run scripts/install-test-deps.sh"
        )))
    }
}
