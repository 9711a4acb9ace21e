//! `cwm-bench bench shell|model|overhead` (figures in benches/README.md).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use cwm_bench::pipeline::with_cleanup;
use cwm_env::{Container, ContainerConfig, Shell, ShellConfig};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Time `true` in the persistent session, as one bollard exec each, and via `docker exec`.
    Shell(ShellBenchArgs),
    /// Harness cost per task against `docker run --rm IMAGE true`.
    Overhead(super::bench_overhead::OverheadBenchArgs),
    /// Prefill and decode tokens/s of the local engine on a GGUF file or checkpoint dir.
    Model(super::bench_model::ModelBenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct ShellBenchArgs {
    /// Iterations for the session and bollard-exec ways (the docker CLI does at most 30).
    #[arg(long, default_value_t = 200)]
    pub n: usize,
}

const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cmd {
            BenchCommand::Shell(args) => bench_shell(args).await,
            BenchCommand::Model(args) => super::bench_model::run(args),
            BenchCommand::Overhead(args) => super::bench_overhead::run(args).await,
        }
    })
}

async fn bench_shell(args: ShellBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.n > 0, "--n must be at least 1");
    let docker = cwm_env::connect().await?;
    let image = cwm_env::build_base_image(&docker).await?;
    let run_id = format!("bench-{}", std::process::id());
    let [session, exec, cli] = with_cleanup(&run_id, async {
        let config = ContainerConfig::new(image, &run_id, "bench");
        let container = Container::start(&docker, &config).await?;
        let result = measure(&container, args.n).await;
        container.remove().await?;
        result
    })
    .await?;
    for (name, stats) in [
        ("session", &session),
        ("bollard-exec", &exec),
        ("docker-cli", &cli),
    ] {
        println!("{name:<13} {stats}");
    }
    println!(
        "ratio docker-cli/session {:.1}",
        cli.median_ms / session.median_ms
    );
    Ok(ExitCode::SUCCESS)
}

async fn measure(container: &Container, n: usize) -> anyhow::Result<[Stats; 3]> {
    let mut shell = Shell::open(container, ShellConfig::default()).await?;
    for _ in 0..20 {
        shell.run("true", COMMAND_TIMEOUT).await?; // warm-up
    }
    let mut session = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let out = shell.run("true", COMMAND_TIMEOUT).await?;
        session.push(started.elapsed());
        anyhow::ensure!(
            out.exit_code == Some(0),
            "`true` failed in the session: {out:?}"
        );
    }
    let mut exec = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        container.exec("true", COMMAND_TIMEOUT).await?;
        exec.push(started.elapsed());
    }
    let mut cli = Vec::new();
    for _ in 0..n.min(30) {
        let started = Instant::now();
        let status = tokio::process::Command::new("docker")
            .args(["exec", container.id(), "true"])
            .status()
            .await
            .context("running `docker exec` (is the docker CLI installed?)")?;
        cli.push(started.elapsed());
        anyhow::ensure!(
            status.success(),
            "`docker exec CONTAINER true` failed: {status}"
        );
    }
    Ok([Stats::of(session), Stats::of(exec), Stats::of(cli)])
}

struct Stats {
    n: usize,
    median_ms: f64,
    mean_ms: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = samples.len();
        let median_ms = if n % 2 == 1 {
            ms(samples[n / 2])
        } else {
            (ms(samples[n / 2 - 1]) + ms(samples[n / 2])) / 2.0
        };
        let mean_ms = samples.iter().copied().map(ms).sum::<f64>() / n as f64;
        Stats {
            n,
            median_ms,
            mean_ms,
        }
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "n={:<4} median {:.3} ms  mean {:.3} ms",
            self.n, self.median_ms, self.mean_ms
        )
    }
}
