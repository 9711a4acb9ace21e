//! `cwm-bench bench overhead`: the harness's own cost per task (container, repo hygiene, bash
//! session, one tool turn with a zero-cost model, trajectory, removal) against
//! `docker run --rm IMAGE true`, the floor for anything that runs a task in a container.

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::Context;
use cwm_agent::{EpisodeConfig, NoopObserver, NullSink, ReplayPolicy};
use cwm_bench::pipeline::{solve, with_cleanup, Task};

#[derive(clap::Args, Debug)]
pub struct OverheadBenchArgs {
    /// Tasks timed each way (cycling over the fixtures).
    #[arg(long, default_value_t = 9)]
    pub n: usize,
}

/// One bash turn, then the turn budget ends the episode: no model time, no test time.
const ONE_TURN: &str = "ok\n</think>\n<tool: bash>\ntrue\n</tool>\n";

pub async fn run(args: OverheadBenchArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.n > 0, "--n must be at least 1");
    let run_id = format!("bench-overhead-{}", std::process::id());
    with_cleanup(&run_id, measure(&run_id, args.n)).await
}

async fn measure(run_id: &str, n: usize) -> anyhow::Result<ExitCode> {
    let docker = cwm_env::connect().await?;
    cwm_env::build_fixture_images(&docker).await?;
    let instances = cwm_datasets::load(&cwm_datasets::fixtures::fixtures_jsonl())?;
    let mut episode = EpisodeConfig::default();
    episode.budgets.max_turns = 1;
    let mut harness = Vec::new();
    let mut docker_run = Vec::new();
    let (mut starts, mut episodes, mut removes) = (Vec::new(), Vec::new(), Vec::new());
    for instance in instances.iter().cycle().take(n) {
        let task = Task {
            docker: &docker,
            instance,
            run_id,
            episode: &episode,
            keep: false,
        };
        cwm_env::ensure_image(&docker, &instance.image_name()).await?;
        let mut policy = ReplayPolicy::from_script(ONE_TURN, "bench");
        let started = Instant::now();
        let solved = solve(&task, &mut policy, &mut NullSink, &mut NoopObserver).await?;
        harness.push(started.elapsed());
        starts.push(solved.timings.start);
        episodes.push(solved.timings.episode);
        removes.push(solved.timings.remove);
        docker_run.push(time_docker_run(&instance.image_name())?);
    }
    let (harness, docker_run) = (median_ms(harness), median_ms(docker_run));
    println!("harness per task      median {harness:.1} ms");
    println!(
        "  of which: start {:.1} ms, episode {:.1} ms, remove {:.1} ms (medians)",
        median_ms(starts),
        median_ms(episodes),
        median_ms(removes)
    );
    println!("docker run --rm true  median {docker_run:.1} ms");
    println!("ratio harness/docker-run {:.2}", harness / docker_run);
    Ok(ExitCode::SUCCESS)
}

fn time_docker_run(image: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("docker")
        .args(["run", "--rm", "--network", "none", image, "true"])
        .status()
        .context("running the docker CLI; is it installed?")?;
    anyhow::ensure!(status.success(), "docker run --rm {image} true failed");
    Ok(started.elapsed())
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}
