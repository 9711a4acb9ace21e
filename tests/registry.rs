//! Task images from a real registry: Debian's `docker-registry` (the reference registry 2.8,
//! installed by `scripts/setup-tests`) serving on a free localhost port from a throwaway
//! storage directory. Fixture images pushed under SWE-bench names are fetched by name by
//! `images pull --namespace`, `run` and `eval`; a name the registry lacks is one clear line.
//! A fault injector (a proxy in front of the registry that fails the first requests with
//! 503/429, or slows what it passes on) checks retries and interrupted pulls.
//!
//! Every guard here (registry process, fault injector, pushed images) cleans up on drop, so a
//! failing test leaves no process, image or container behind either.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is its failure message

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cwm_datasets::official_image_name;

fn cwm_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run cwm-bench")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the docker CLI")
}

fn docker_ok(args: &[&str]) {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        text(&out.stderr)
    );
}

fn image_exists(name: &str) -> bool {
    docker(&["image", "inspect", name]).status.success()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One HTTP GET on localhost; the status line, or None when nothing answers.
fn http_status(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    answer.lines().next().map(str::to_string)
}

/// `docker-registry serve` on a free port with its own storage; killed on drop.
struct Registry {
    child: Child,
    port: u16,
    _storage: tempfile::TempDir,
}

/// The user the registry of the credentials test admits.
const USER: &str = "cwm";
const PASSWORD: &str = "cwm-bench-test";
/// bcrypt (cost 4) of [`PASSWORD`], as htpasswd files hold it.
const PASSWORD_BCRYPT: &str = "$2b$04$QrZGraYHdlATA1uiUNja0uMgXC4OZjYRl1kk7bwU9WOu2ohfKT.Gi";

impl Registry {
    /// A registry anyone may push to and pull from.
    fn start() -> Registry {
        Self::start_with(false)
    }

    /// With `auth`, only [`USER`] with [`PASSWORD`] gets in (htpasswd, basic auth).
    fn start_with(auth: bool) -> Registry {
        for _ in 0..3 {
            if let Some(registry) = Self::try_start(auth) {
                return registry;
            }
        }
        panic!("docker-registry did not come up on a free port");
    }

    /// None when the port was taken in between (the registry exits at once then).
    fn try_start(auth: bool) -> Option<Registry> {
        let storage = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = storage.path().join("config.yml");
        let data = storage.path().join("data");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            data.display()
        );
        if auth {
            let htpasswd = storage.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{USER}:{PASSWORD_BCRYPT}\n")).unwrap();
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: cwm-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(storage.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start docker-registry ({e}); run scripts/setup-tests")
            });
        let mut registry = Registry {
            child,
            port,
            _storage: storage,
        };
        registry.wait_ready().then_some(registry)
    }

    fn wait_ready(&mut self) -> bool {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            // 200, or 401 when the registry wants credentials: either way it is serving.
            if http_status(self.port, "/v2/")
                .is_some_and(|s| s.contains(" 200") || s.contains(" 401"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("docker-registry on port {} did not answer", self.port);
    }

    fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Local images whose names start with a prefix (a registry's `localhost:PORT/`); removed on
/// drop.
struct LocalImages {
    prefix: String,
}

impl LocalImages {
    fn new(host: &str) -> LocalImages {
        LocalImages {
            prefix: format!("{host}/"),
        }
    }

    fn names(&self) -> Vec<String> {
        let out = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
        text(&out.stdout)
            .lines()
            .filter(|name| name.starts_with(&self.prefix))
            .map(str::to_string)
            .collect()
    }

    fn remove_all(&self) {
        for name in self.names() {
            let _ = docker(&["rmi", &name]);
        }
    }
}

impl Drop for LocalImages {
    fn drop(&mut self) {
        self.remove_all();
    }
}

/// Tags `source` as `name`, pushes it, and removes the local `name` again.
fn push(source: &str, name: &str) {
    docker_ok(&["tag", source, name]);
    docker_ok(&["push", "--quiet", name]);
    docker_ok(&["rmi", name]);
    assert!(!image_exists(name));
}

/// Fault injector: a TCP proxy in front of the registry. Each pull the daemon starts (it
/// begins with `GET /v2/`) takes the next status from `faults`, and that pull's manifest
/// requests are answered with it (503, or 429 with `Retry-After: 1`) instead of reaching the
/// registry; with `throttled` set, what the registry sends back trickles through at about
/// 320 KB/s. Stopped, with every connection shut, on drop.
struct FaultProxy {
    port: u16,
    state: Arc<ProxyState>,
    accept: Option<JoinHandle<()>>,
}

struct ProxyState {
    upstream: u16,
    faults: Mutex<VecDeque<u16>>,
    /// The fault of the pull in progress (taken from `faults` at each pull's `GET /v2/`).
    current: Mutex<Option<u16>>,
    injected: AtomicUsize,
    throttled: AtomicBool,
    served: AtomicU64,
    stop: AtomicBool,
    connections: Mutex<Vec<TcpStream>>,
    /// Every request line seen, for failure messages.
    requests: Mutex<Vec<String>>,
}

impl FaultProxy {
    fn start(upstream: u16, faults: &[u16]) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ProxyState {
            upstream,
            faults: Mutex::new(faults.iter().copied().collect()),
            current: Mutex::new(None),
            injected: AtomicUsize::new(0),
            throttled: AtomicBool::new(false),
            served: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            connections: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let state = Arc::clone(&shared);
                    std::thread::spawn(move || serve(stream, &state));
                }
            }
        });
        FaultProxy {
            port,
            state,
            accept: Some(accept),
        }
    }

    fn host(&self) -> String {
        format!("localhost:{}", self.port)
    }

    fn fail_next(&self, faults: &[u16]) {
        self.state.faults.lock().unwrap().extend(faults);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for stream in self.state.connections.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// One client connection (one request): a TLS hello (the daemon tries HTTPS first) is closed, a fault is
/// answered, anything else is passed to the registry.
fn serve(mut client: TcpStream, state: &ProxyState) {
    let mut first = [0u8; 1];
    if client.peek(&mut first).unwrap_or(0) == 0 || first[0] == 0x16 {
        return;
    }
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let line = text(&head).lines().next().unwrap_or_default().to_string();
    state.requests.lock().unwrap().push(line.clone());
    if line.starts_with("GET /v2/ ") {
        let next = state.faults.lock().unwrap().pop_front();
        *state.current.lock().unwrap() = next;
    }
    let fault = if line.contains("/manifests/") {
        *state.current.lock().unwrap()
    } else {
        None
    };
    if let Some(status) = fault {
        state.injected.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(fault_response(status).as_bytes());
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", state.upstream)) else {
        return;
    };
    if upstream.write_all(&one_request(&head)).is_err() {
        return;
    }
    {
        let mut connections = state.connections.lock().unwrap();
        connections.extend(client.try_clone().ok());
        connections.extend(upstream.try_clone().ok());
    }
    let (mut client_in, mut upstream_out) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = upstream.read(&mut buf) {
        if n == 0 || client.write_all(&buf[..n]).is_err() {
            break;
        }
        state.served.fetch_add(n as u64, Ordering::SeqCst);
        if state.throttled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = client.shutdown(Shutdown::Both);
    let _ = forward.join();
}

/// The head with `Connection: close`, so that every request comes on a connection of its own.
fn one_request(head: &[u8]) -> Vec<u8> {
    let text = text(head);
    let mut lines: Vec<&str> = text
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n")).into_bytes()
}

/// The request head (through the blank line), or None when the client went away.
fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

/// A registry error answer, in the registry's JSON error format.
fn fault_response(status: u16) -> String {
    let (reason, code, extra) = match status {
        429 => ("Too Many Requests", "TOOMANYREQUESTS", "Retry-After: 1\r\n"),
        _ => ("Service Unavailable", "UNAVAILABLE", ""),
    };
    let body = format!(
        "{{\"errors\":[{{\"code\":\"{code}\",\"message\":\"fault injector: {status}\"}}]}}"
    );
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The fixtures the end-to-end test pushes, with their fixture image names.
const PUSHED: [(&str, &str); 2] = [
    ("fixtures__paginate-1", "cwm-bench/fixture.paginate:latest"),
    ("fixtures__retry-1", "cwm-bench/fixture.retry:latest"),
];

fn build_fixture_images() {
    let out = cwm_bench(&["images", "build-fixtures"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Containers still carrying this run's label.
fn containers_of(run_id: &str) -> String {
    let filter = format!("label=cwm-bench.run={run_id}");
    text(&docker(&["ps", "-aq", "--filter", &filter]).stdout)
}

fn last_line(out: &Output) -> String {
    text(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The fixture rows of `ids`, each with `image` set to its name under `namespace`.
fn dataset_with_images(dir: &Path, namespace: &str, ids: &[&str]) -> std::path::PathBuf {
    let source = std::fs::read_to_string(cwm_datasets::fixtures::fixtures_jsonl()).unwrap();
    let mut rows = String::new();
    for line in source.lines() {
        let mut row: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = row["instance_id"].as_str().unwrap().to_string();
        if ids.contains(&id.as_str()) {
            row["image"] = official_image_name(namespace, "x86_64", &id).into();
            rows.push_str(&format!("{row}\n"));
        }
    }
    let path = dir.join("registry.jsonl");
    std::fs::write(&path, rows).unwrap();
    path
}

#[test]
fn pull_run_and_eval_fetch_registry_images_by_name() {
    build_fixture_images();
    let registry = Registry::start();
    let pushed = LocalImages::new(&registry.host());
    let namespace = format!("{}/swebench", registry.host());
    let names: Vec<String> = PUSHED
        .iter()
        .map(|(id, fixture)| {
            let name = official_image_name(&namespace, "x86_64", id);
            push(fixture, &name);
            name
        })
        .collect();
    let ids = PUSHED.map(|(id, _)| id).join(",");
    let selection = ["--namespace", &namespace, "--instances", &ids];

    let out = cwm_bench(&[&["images", "pull", "--quiet"][..], &selection].concat());
    assert_success("images pull", &out);
    for name in &names {
        assert!(
            text(&out.stdout).contains(&format!("{name} pulled")),
            "{}",
            text(&out.stdout)
        );
        assert!(image_exists(name), "{name}");
    }
    assert_eq!(last_line(&out), "0 present, 2 pulled, 0 failed");
    assert!(
        text(&out.stderr).contains("pulling"),
        "quiet logs lines: {}",
        text(&out.stderr)
    );

    let out = cwm_bench(&[&["images", "list"][..], &selection].concat());
    assert_success("images list", &out);
    assert!(
        last_line(&out).starts_with("2 of 2 images present, "),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains(&format!("{}\t", names[0])));

    let out = cwm_bench(&[&["images", "prune"][..], &selection].concat());
    assert_success("images prune", &out);
    assert!(
        last_line(&out).starts_with("2 removed, 0 not present, 0 failed; "),
        "{}",
        text(&out.stdout)
    );
    assert!(names.iter().all(|name| !image_exists(name)));
    assert!(
        PUSHED.iter().all(|(_, fixture)| image_exists(fixture)),
        "fixtures stay"
    );

    let runs = tempfile::tempdir().unwrap();
    let runs_dir = runs.path().to_str().unwrap();
    let eval_id = format!("registry-eval-{}", std::process::id());
    let eval = [
        "eval",
        "--predictions",
        "gold",
        "--workers",
        "2",
        "--run-id",
        &eval_id,
        "--runs-dir",
        runs_dir,
    ];
    let out = cwm_bench(&[&eval[..], &selection].concat());
    assert_success("eval", &out);
    assert_eq!(last_line(&out), "resolved 2/2 (100.0%)");
    assert!(
        names.iter().all(|name| image_exists(name)),
        "eval pulled them"
    );
    assert_eq!(containers_of(&eval_id), "");
    pushed.remove_all();

    let dataset = dataset_with_images(runs.path(), &namespace, &PUSHED.map(|(id, _)| id));
    let run_id = format!("registry-run-{}", std::process::id());
    let out = cwm_bench(&[
        "run",
        "--quiet",
        "--model",
        "oracle",
        "--evaluate",
        "--workers",
        "2",
        "--dataset",
        dataset.to_str().unwrap(),
        "--run-id",
        &run_id,
        "--runs-dir",
        runs_dir,
    ]);
    assert_success("run", &out);
    assert!(
        text(&out.stdout).contains("resolved 2/2 (100.0%)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        names.iter().all(|name| image_exists(name)),
        "run pulled them"
    );
    assert_eq!(containers_of(&run_id), "");

    // `--cache-level none` removes what the run pulled once each instance is done.
    pushed.remove_all();
    let run_id = format!("registry-run-none-{}", std::process::id());
    let out = cwm_bench(&[
        "run",
        "--quiet",
        "--model",
        "oracle",
        "--evaluate",
        "--cache-level",
        "none",
        "--prefetch",
        "1",
        "--dataset",
        dataset.to_str().unwrap(),
        "--run-id",
        &run_id,
        "--runs-dir",
        runs_dir,
    ]);
    assert_success("run --cache-level none --prefetch 1", &out);
    let log = std::fs::read_to_string(Path::new(runs_dir).join(&run_id).join("run.log")).unwrap();
    assert!(
        log.contains("prefetched"),
        "the second image was pulled ahead: {log}"
    );
    assert!(
        text(&out.stdout).contains("resolved 2/2 (100.0%)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        names.iter().all(|name| !image_exists(name)),
        "the run removed the images it pulled: {:?}",
        pushed.names()
    );

    // `--max-disk`: a budget Docker's disk cannot hold is refused before anything starts;
    // one that holds an image and a half keeps only the most recently used image.
    let run_args = |run_id: &str, budget: &str| {
        cwm_bench(&[
            "run",
            "--quiet",
            "--model",
            "oracle",
            "--max-disk",
            budget,
            "--dataset",
            dataset.to_str().unwrap(),
            "--run-id",
            run_id,
            "--runs-dir",
            runs_dir,
        ])
    };
    let out = run_args(&format!("registry-huge-{}", std::process::id()), "900PiB");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--max-disk") && stderr.contains("free on"),
        "{stderr}"
    );
    let size: u64 =
        text(&docker(&["image", "inspect", "--format", "{{.Size}}", PUSHED[0].1]).stdout)
            .trim()
            .parse()
            .unwrap();
    let out = run_args(
        &format!("registry-budget-{}", std::process::id()),
        &(size * 3 / 2).to_string(),
    );
    assert_success("run --max-disk", &out);
    let present: Vec<&String> = names.iter().filter(|name| image_exists(name)).collect();
    assert_eq!(present.len(), 1, "one image fits the budget: {present:?}");

    pushed.remove_all();
    assert_eq!(pushed.names(), Vec::<String>::new());
}

#[test]
fn an_image_the_registry_lacks_is_one_clear_line_at_once() {
    let registry = Registry::start();
    let _pulled = LocalImages::new(&registry.host());
    let namespace = format!("{}/swebench", registry.host());
    let name = official_image_name(&namespace, "x86_64", "fixtures__paginate-1");
    let started = Instant::now();
    let out = cwm_bench(&[
        "images",
        "pull",
        "--namespace",
        &namespace,
        "--instances",
        "fixtures__paginate-1",
    ]);
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: image {name} "))
            && stderr.contains("no such image")
            && stderr.contains("check the image name"),
        "{stderr}"
    );
    assert_eq!(last_line(&out), "0 present, 0 pulled, 1 failed");

    let out = cwm_bench(&[
        "images",
        "list",
        "--image-template",
        "{namespace}/{repo}:{id}",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown placeholder `{repo}`") && stderr.lines().count() == 1,
        "{stderr}"
    );
}

/// A one-layer image of `bytes` random bytes (so no layer is shared with anything local),
/// imported as `name`.
fn import_random_image(dir: &Path, name: &str, bytes: usize) {
    use rand::RngCore;
    let root = dir.join("rootfs");
    std::fs::create_dir_all(&root).unwrap();
    let mut data = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut data);
    std::fs::write(root.join("payload.bin"), data).unwrap();
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar")
        .arg("-cf")
        .arg(&tarball)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    docker_ok(&["import", tarball.to_str().unwrap(), name]);
}

#[test]
fn transient_registry_failures_are_retried_and_give_up_after_the_attempts() {
    let registry = Registry::start();
    let _pushed = LocalImages::new(&registry.host());
    let work = tempfile::tempdir().unwrap();
    let name = format!(
        "{}/cwm-test/small-{}:latest",
        registry.host(),
        std::process::id()
    );
    import_random_image(work.path(), &name, 64 * 1024);
    push(&name.clone(), &name);
    let proxy = FaultProxy::start(registry.port, &[503, 429]);
    let _proxied = LocalImages::new(&proxy.host());
    let proxied = name.replacen(&registry.host(), &proxy.host(), 1);
    let rt = runtime();
    let docker = rt.block_on(cwm_env::connect()).unwrap();

    let options = cwm_env::PullOptions {
        quiet: true,
        attempts: 4,
    };
    let started = Instant::now();
    let report = rt.block_on(cwm_env::pull_image(&docker, &proxied, &options));
    let report = report
        .unwrap_or_else(|e| panic!("{e}; requests: {:#?}", proxy.state.requests.lock().unwrap()));
    assert_eq!(report.attempts, 3, "a 503, a 429, then success");
    assert_eq!(report.layers, 1);
    assert!(report.bytes > 0);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "backed off 1 s, then 1-2 s"
    );
    assert!(proxy.state.injected.load(Ordering::SeqCst) >= 2);
    assert!(image_exists(&proxied));
    docker_ok(&["rmi", &proxied]);

    proxy.fail_next(&[503, 503, 503]);
    let options = cwm_env::PullOptions {
        quiet: true,
        attempts: 2,
    };
    let err = rt
        .block_on(cwm_env::pull_image(&docker, &proxied, &options))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("image {proxied} "))
            && err.contains("after 2 attempt(s)")
            && err.contains("503")
            && !err.contains('\n'),
        "{err}"
    );
    assert!(!image_exists(&proxied));
}

#[test]
fn an_interrupted_pull_leaves_no_image_and_the_next_pull_completes() {
    let registry = Registry::start();
    let _pushed = LocalImages::new(&registry.host());
    let work = tempfile::tempdir().unwrap();
    let name = format!(
        "{}/cwm-test/large-{}:latest",
        registry.host(),
        std::process::id()
    );
    import_random_image(work.path(), &name, 24 * 1024 * 1024);
    push(&name.clone(), &name);
    let proxy = FaultProxy::start(registry.port, &[]);
    let proxied_images = LocalImages::new(&proxy.host());
    let proxied = name.replacen(&registry.host(), &proxy.host(), 1);
    proxy.state.throttled.store(true, Ordering::SeqCst);
    let rt = runtime();
    let docker = rt.block_on(cwm_env::connect()).unwrap();

    // The pull future dropped midway (a cancelled task).
    let pull = {
        let (docker, proxied) = (docker.clone(), proxied.clone());
        rt.spawn(async move {
            let options = cwm_env::PullOptions {
                quiet: true,
                attempts: 1,
            };
            cwm_env::pull_image(&docker, &proxied, &options).await
        })
    };
    wait_for_bytes(&proxy, 1024 * 1024);
    assert!(!rt
        .block_on(cwm_env::image_exists(&docker, &proxied))
        .unwrap());
    pull.abort();
    assert!(rt.block_on(pull).unwrap_err().is_cancelled());
    std::thread::sleep(Duration::from_secs(1));
    assert!(!rt
        .block_on(cwm_env::image_exists(&docker, &proxied))
        .unwrap());

    // A `cwm-bench images pull` killed midway.
    let dataset = work.path().join("one.jsonl");
    let mut row: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(cwm_datasets::fixtures::fixtures_jsonl())
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    row["image"] = proxied.clone().into();
    std::fs::write(&dataset, format!("{row}\n")).unwrap();
    let served = proxy.state.served.load(Ordering::SeqCst);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args([
            "images",
            "pull",
            "--quiet",
            "--dataset",
            dataset.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_bytes(&proxy, served + 512 * 1024);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!image_exists(&proxied), "a killed pull leaves no image");

    // Unthrottled, the next pull completes.
    proxy.state.throttled.store(false, Ordering::SeqCst);
    let out = cwm_bench(&[
        "images",
        "pull",
        "--quiet",
        "--dataset",
        dataset.to_str().unwrap(),
    ]);
    assert_success("images pull after interruptions", &out);
    assert!(image_exists(&proxied));
    proxied_images.remove_all();
    assert_eq!(proxied_images.names(), Vec::<String>::new());
}

/// Waits until the fault injector has passed `bytes` bytes back to the daemon.
fn wait_for_bytes(proxy: &FaultProxy, bytes: u64) {
    let started = Instant::now();
    while proxy.state.served.load(Ordering::SeqCst) < bytes {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the pull did not start; requests: {:#?}",
            proxy.state.requests.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn credentials_from_the_docker_config_reach_the_registry() {
    let registry = Registry::start_with(true);
    let _pulled = LocalImages::new(&registry.host());
    let work = tempfile::tempdir().unwrap();
    let name = format!(
        "{}/cwm-test/private-{}:latest",
        registry.host(),
        std::process::id()
    );
    import_random_image(work.path(), &name, 16 * 1024);
    // `docker login` into a config directory of its own, not the user's ~/.docker.
    let logged_in = work.path().join("logged-in");
    let config = logged_in.to_str().unwrap();
    let mut login = Command::new("docker")
        .args([
            "--config",
            config,
            "login",
            "--username",
            USER,
            "--password-stdin",
        ])
        .arg(registry.host())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    login
        .stdin
        .take()
        .unwrap()
        .write_all(PASSWORD.as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success(), "docker login");
    docker_ok(&["--config", config, "push", "--quiet", &name]);
    docker_ok(&["rmi", &name]);
    let dataset = work.path().join("one.jsonl");
    let mut row: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(cwm_datasets::fixtures::fixtures_jsonl())
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    row["image"] = name.clone().into();
    std::fs::write(&dataset, format!("{row}\n")).unwrap();
    let pull = |config_dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
            .args(["images", "pull", "--dataset", dataset.to_str().unwrap()])
            .env("DOCKER_CONFIG", config_dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };

    // No credentials: refused at once, in one line naming the image and `docker login`.
    let anonymous = work.path().join("anonymous");
    std::fs::create_dir_all(&anonymous).unwrap();
    let out = pull(&anonymous);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with(&format!("error: image {name} "))
            && stderr.contains(&format!("docker login {}", registry.host())),
        "{stderr}"
    );
    assert!(!image_exists(&name));

    // The base64 `auth` that `docker login` wrote.
    let out = pull(&logged_in);
    assert_success("pull with the login's config", &out);
    assert!(image_exists(&name));
    docker_ok(&["rmi", &name]);

    // Plain `username`/`password` fields.
    let plain = work.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let auths = serde_json::json!({"auths": {format!("http://{}", registry.host()): {
        "username": USER, "password": PASSWORD}}});
    std::fs::write(plain.join("config.json"), auths.to_string()).unwrap();
    let out = pull(&plain);
    assert_success("pull with username and password", &out);
    assert!(image_exists(&name));
    docker_ok(&["rmi", &name]);

    // A credential helper (a real executable speaking the helper protocol, written here):
    // `credHelpers` names it for this registry and `auths` has nothing.
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = work.path().join("helper-asked");
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> {asked}\n\
         if [ \"$server\" = {host} ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n\
         else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        asked = asked.display(),
        host = registry.host(),
    );
    let helper = bin.join("docker-credential-cwmtest");
    std::fs::write(&helper, script).unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let with_helper = work.path().join("helper");
    std::fs::create_dir_all(&with_helper).unwrap();
    let config = serde_json::json!({"credHelpers": {registry.host(): "cwmtest"}});
    std::fs::write(with_helper.join("config.json"), config.to_string()).unwrap();
    let pull_with_path = |config_dir: &Path| {
        Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
            .args(["images", "pull", "--dataset", dataset.to_str().unwrap()])
            .env("DOCKER_CONFIG", config_dir)
            .env("PATH", &path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = pull_with_path(&with_helper);
    assert_success("pull with a credential helper", &out);
    assert!(image_exists(&name));
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        registry.host(),
        "the helper was asked for the registry's address"
    );
    docker_ok(&["rmi", &name]);

    // A `credsStore` whose helper is not installed: refused in one line naming the helper.
    let missing = work.path().join("missing-helper");
    std::fs::create_dir_all(&missing).unwrap();
    std::fs::write(
        missing.join("config.json"),
        r#"{"credsStore": "cwm-absent"}"#,
    )
    .unwrap();
    let out = pull_with_path(&missing);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("error: image {name} "))
            && last.contains("credential helper `cwm-absent` failed")
            && last.contains("docker-credential-cwm-absent"),
        "{stderr}"
    );
    assert!(!image_exists(&name));
}

/// `image`: a fixture image with one more layer of `bytes` random bytes (so that pulling it
/// downloads that much whatever else the machine holds), committed from a container.
fn fixture_with_ballast(fixture: &str, image: &str, bytes: usize) {
    let container = format!("cwm-test-ballast-{}", std::process::id());
    let fill = format!("head -c {bytes} /dev/urandom > /opt/cwm-ballast");
    docker_ok(&["run", "--name", &container, fixture, "sh", "-c", &fill]);
    docker_ok(&["commit", &container, image]);
    docker_ok(&["rm", "-f", &container]);
}

#[test]
fn a_run_killed_during_a_pull_starts_again_and_completes() {
    build_fixture_images();
    let registry = Registry::start();
    let pushed = LocalImages::new(&registry.host());
    let (id, fixture) = PUSHED[0];
    let name = official_image_name(&format!("{}/swebench", registry.host()), "x86_64", id);
    fixture_with_ballast(fixture, &name, 8 * 1024 * 1024);
    push(&name.clone(), &name);
    pushed.remove_all();
    let proxy = FaultProxy::start(registry.port, &[]);
    let proxied_images = LocalImages::new(&proxy.host());
    let namespace = format!("{}/swebench", proxy.host());
    let proxied = official_image_name(&namespace, "x86_64", id);
    proxy.state.throttled.store(true, Ordering::SeqCst);

    let runs = tempfile::tempdir().unwrap();
    let dataset = dataset_with_images(runs.path(), &namespace, &[id]);
    let run_id = format!("registry-killed-{}", std::process::id());
    let args = [
        "run",
        "--quiet",
        "--model",
        "oracle",
        "--evaluate",
        "--dataset",
        dataset.to_str().unwrap(),
        "--run-id",
        &run_id,
        "--runs-dir",
        runs.path().to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_cwm-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_bytes(&proxy, 1024 * 1024);
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !image_exists(&proxied),
        "a half-pulled image is not an image"
    );
    assert_eq!(containers_of(&run_id), "", "no episode container started");

    proxy.state.throttled.store(false, Ordering::SeqCst);
    let out = cwm_bench(&args);
    assert_success("the run started again", &out);
    assert!(
        text(&out.stdout).contains("resolved 1/1 (100.0%)"),
        "{}",
        text(&out.stdout)
    );
    let preds = std::fs::read_to_string(runs.path().join(&run_id).join("preds.jsonl")).unwrap();
    assert_eq!(preds.lines().count(), 1, "{preds}");
    assert_eq!(containers_of(&run_id), "");
    proxied_images.remove_all();
    assert_eq!(proxied_images.names(), Vec::<String>::new());
}
