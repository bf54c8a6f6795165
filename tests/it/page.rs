//! The status page in a real browser — Debian's chromium, headless, driven
//! through chromedriver — against a real `runway serve`: sign in with a
//! token from the keyboard, the board, an approval given from the page,
//! a rejection whose reason is markup shown as text, the board and the
//! audit timeline growing live as runways are filed from the CLI, a viewer
//! offered no buttons and its forged POST refused, a wrong token sent back
//! to sign in, and a phone-sized window that needs no sideways scrolling;
//! and that the page says what is true: a landed runway's locks in the
//! past tense, the E/S legend, the waiting count on the Approvals link,
//! the favicon, the approver's audit transitions, and one sign-in serving
//! a second tab. Screenshots of the board, the approvals, a runway and the
//! audit timeline are written to `target/screenshots/` on every run.
//! A runway's page draws its delegation tree: the parent it was delegated
//! by, its tree's progress bar, every runway below it under its parent
//! with its state, growing live as children are filed, a guest's words as
//! text (screenshot `tree`).
//! The board groups a filing's runways under it, with start, end and
//! duration, and learns later filings live; a filing's page draws its
//! graph (nodes by state, `after` and delegation edges, children folded
//! until opened; a node clicked opens its runway) and its timeline (one
//! lane per dataset: a backup waiting for the lock an import holds);
//! a runway's page shows each attempt (a failed one beside the retry that
//! succeeded) with its own log lines, and its input and output,
//! inline as text; an operator re-files from it (audited in their name),
//! a viewer gets no button and its forged POST is refused; the filing's
//! page and a runway's attempts read on a phone. The panels and graph marks for what other parts
//! add (triggers, agents, `when`, `takes_from`, budgets) are drawn from
//! those shapes. Screenshots of these views go into `docs/` (the README
//! shows them).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::server::{Server, folders};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs Debian's chromium and chromium-driver when they are missing
/// (as the host's build script installs the wasm target), so the README's
/// test command needs nothing installed by hand.
fn install_browser() {
    let present = || {
        [CHROMIUM, CHROMEDRIVER]
            .iter()
            .all(|t| std::path::Path::new(t).exists())
    };
    if present() {
        return;
    }
    eprintln!("installing Debian's chromium and chromium-driver for the browser test");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !apt(&["install", "-y", "-qq", "chromium", "chromium-driver"]) {
        apt(&["update", "-qq"]);
        apt(&["install", "-y", "-qq", "chromium", "chromium-driver"]);
    }
}

/// A chromedriver child on a free port.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        install_browser();
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is missing: .ci/run installs Debian's chromium and chromium-driver"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1200,900"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 20 s) for an element matching `css`.
async fn find(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
}

/// Waits (up to 20 s) until the script's value is true.
async fn until(c: &Client, script: &str) {
    let started = Instant::now();
    loop {
        let v = c
            .execute(&format!("return ({script});"), vec![])
            .await
            .unwrap();
        if v == json!(true) {
            return;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let page = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap();
            panic!("never true: {script}\npage: {page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `[status, body]` of a POST of `{}` to `path` with `token`, sent by the
/// page's own fetch (or `["fetch failed", why]`): what a script forged
/// in the page would get. Nothing is left to a global set later.
async fn forged_post(c: &Client, path: &str, token: &str) -> serde_json::Value {
    let forged = format!(
        "const done = arguments[arguments.length - 1]; \
         fetch('{path}', {{ method: 'POST', headers: \
         {{ Authorization: 'Bearer {token}', 'Content-Type': 'application/json' }}, \
         body: '{{}}' }}).then(r => r.text().then(b => done([r.status, b]))) \
         .catch(e => done(['fetch failed', String(e)]))"
    );
    c.execute_async(&forged, vec![])
        .await
        .expect("the forged POST is answered (a connection is free for it)")
}

/// Where the screenshots go: `target/screenshots/`.
fn screenshots() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    target.join("screenshots")
}

/// Saves what the browser shows as `target/screenshots/NAME.png`.
async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    let dir = screenshots();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

fn state_of(server: &Server, id: &str) -> String {
    server.json(&["show", id])["state"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn sign_in(c: &Client, base: &str, token: &str) {
    c.goto(&format!("{base}/")).await.unwrap();
    // Sign out of whoever was signed in first.
    c.execute("sessionStorage.clear()", vec![]).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    let input = find(c, "#login #token").await;
    input.send_keys(&format!("{token}\u{E007}")).await.unwrap();
}

#[test]
fn the_status_page_in_a_real_browser() {
    let dir = folders();
    let server = Server::start(dir.path());
    let alice = server.token("alice", &["approver"]);
    let vic = server.token("vic", &["viewer"]);
    server.file(
        r#"
        [[runway]]
        id = "import"
        agent = "import-applications"
        datasets = { test_page = "exclusive" }
        input = { count = 3, seed = 1 }
        [[runway]]
        id = "awards"
        agent = "probe"
        action = "ok"
        after = ["import"]
        approval = { required = true }
        [[runway]]
        id = "doubtful"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        "#,
    );
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let base = server.url.clone();

        // A wrong token is sent back to sign in.
        sign_in(&c, &base, &"0".repeat(64)).await;
        // (The sign-in form is drawn again with the refusal: looked for
        // once that has happened, not before.)
        until(&c, "document.querySelector('[role=alert]')?.textContent.includes('refused')").await;
        let refused = find(&c, "#login").await;
        assert!(refused.is_displayed().await.unwrap());

        // Signed in as the approver (Enter submits): the board.
        sign_in(&c, &base, &alice).await;
        find(&c, "#runways tr[data-runway='awards'] [data-state='WAITING_APPROVAL']").await;
        find(&c, "#runways tr[data-runway='import'] [data-state='SUCCEEDED']").await;
        let who = find(&c, "#who").await.text().await.unwrap();
        assert!(who.contains("alice (approver)"), "{who}");
        screenshot(&c, "board").await;

        // The board follows the trail: a runway filed from the CLI appears
        // without a reload.
        until(&c, "(window.marker = 1) === 1").await;
        server.file("[[runway]]\nid = \"later\"\nagent = \"probe\"\naction = \"ok\"\n");
        find(&c, "#runways tr[data-runway='later'] [data-state='SUCCEEDED']").await;
        until(&c, "window.marker === 1").await;

        // Approvals: a click on Approve, a reject from the keyboard (Enter
        // in the reason) with a reason that is markup — shown as text,
        // never as markup.
        // A reason half typed survives the list changing around it.
        c.goto(&format!("{base}/approvals")).await.unwrap();
        let reason = find(&c, ".approval[data-runway='doubtful'] .reject input").await;
        reason.send_keys("<b id=injected>not ").await.unwrap();
        let note = find(&c, ".approval[data-runway='awards'] .approve input").await;
        screenshot(&c, "approvals").await;
        note.send_keys("totals checked").await.unwrap();
        find(&c, ".approval[data-runway='awards'] .approve button")
            .await
            .click()
            .await
            .unwrap();
        until(&c, "!document.querySelector(\".approval[data-runway='awards']\")").await;
        reason.send_keys("today</b>\u{E007}").await.unwrap();
        until(&c, "!document.querySelector(\".approval[data-runway='doubtful']\")").await;
        assert_eq!(server.client(&["wait", "awards"]).code, 0);
        let awards = server.json(&["show", "awards"]);
        assert_eq!(awards["approved_by"], "alice");
        assert!(awards["history"].to_string().contains("totals checked"));
        c.goto(&format!("{base}/runways/doubtful")).await.unwrap();
        find(&c, "#history").await;
        until(&c, "document.body.textContent.includes('<b id=injected>not today</b>')").await;
        until(&c, "document.getElementById('injected') === null").await;
        // Its audit records, each with an inclusion proof for the approver?
        // No: proofs are the auditor's; the approver sees transitions only.
        find(&c, "#records tr").await;
        assert!(c.find(Locator::Css("#records button.proof")).await.is_err());

        // The audit timeline of a dataset grows live.
        c.goto(&format!("{base}/audit?dataset=test_page")).await.unwrap();
        find(&c, "#timeline li").await;
        let before = c
            .find_all(Locator::Css("#timeline li"))
            .await
            .unwrap()
            .len();
        server.file(
            "[[runway]]\nid = \"second\"\nagent = \"import-applications\"\ndatasets = { test_page = \"exclusive\" }\ninput = { count = 2, seed = 2 }\n",
        );
        until(&c, "[...document.querySelectorAll('#timeline li')].some(li => li.textContent.includes('second') && li.textContent.includes('succeeded'))").await;
        let after = c
            .find_all(Locator::Css("#timeline li"))
            .await
            .unwrap()
            .len();
        assert!(after > before, "{before} -> {after}");
        screenshot(&c, "audit").await;

        // A viewer is offered no buttons.
        sign_in(&c, &base, &vic).await;
        find(&c, "#runways").await;
        server.file("[[runway]]\nid = \"gated\"\nagent = \"probe\"\naction = \"ok\"\napproval = { required = true }\n");
        c.goto(&format!("{base}/approvals")).await.unwrap();
        find(&c, "#approvals section").await;
        until(&c, "document.body.textContent.includes('Your token may not approve.')").await;
        assert!(c.find(Locator::Css(".approval")).await.is_err());
        // And a POST forged from the page with the viewer's token is refused.
        // The script hands back what the server answered, or why the
        // fetch failed: nothing is left to a global set later.
        // (It hung here when each page visited kept its event stream open
        // in the back/forward cache: six pages in, the browser had no
        // connection left for it.)
        let said = forged_post(&c, "/api/runways/gated/approve", &vic).await;
        assert_eq!(said[0], 403, "{said}");
        assert!(said[1].as_str().unwrap().contains("vic (viewer) may not approve"), "{said}");
        assert_eq!(state_of(&server, "gated"), "WAITING_APPROVAL");

        // On a phone: nothing needs sideways scrolling.
        c.set_window_size(375, 812).await.unwrap();
        c.goto(&format!("{base}/")).await.unwrap();
        find(&c, "#runways tr[data-runway='gated']").await;
        until(&c, "document.documentElement.scrollWidth <= window.innerWidth").await;

        c.close().await.unwrap();
    });
}

#[test]
fn the_status_page_says_what_is_true() {
    let dir = folders();
    let server = Server::start(dir.path());
    let alice = server.token("alice", &["approver"]);
    server.file(
        r#"
        [[runway]]
        id = "landed"
        agent = "probe"
        action = "ok"
        datasets = { test_true = "exclusive" }
        labels = { team = "aid" }
        [[runway]]
        id = "gate-a"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        [[runway]]
        id = "gate-b"
        agent = "probe"
        action = "ok"
        approval = { required = true }
        "#,
    );
    assert_eq!(server.client(&["wait", "landed"]).code, 0);

    // The icon every browser asks for, without a token.
    for path in ["/favicon.ico", "/favicon.svg"] {
        let answer = ureq::get(&format!("{}{path}", server.url)).call().unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{path}");
        let kind = answer.headers()["content-type"].to_str().unwrap();
        assert_eq!(kind, "image/svg+xml", "{path}");
    }

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let base = server.url.clone();
        sign_in(&c, &base, &alice).await;
        find(&c, "#runways tr[data-runway='landed'] [data-state='SUCCEEDED']").await;

        // The board says what E and S mean; the Approvals link how many wait,
        // and keeps count as they are approved.
        let legend = find(&c, "#legend").await.text().await.unwrap();
        assert!(legend.contains("E = exclusive"), "{legend}");
        assert!(legend.contains("S = shared"), "{legend}");
        until(&c, "document.getElementById('nav-approvals').textContent === 'Approvals (2 waiting)'").await;
        let approved = server.client_as(&alice, &["approve", "gate-a"]);
        assert_eq!(approved.code, 0, "{}", approved.stderr);
        until(&c, "document.getElementById('nav-approvals').textContent === 'Approvals (1 waiting)'").await;

        // A landed runway held its lock; it does not hold it now. The run
        // time allowed is said in words.
        c.goto(&format!("{base}/runways/landed")).await.unwrap();
        let locks = find(&c, "#locks-list li").await.text().await.unwrap();
        assert!(
            locks.starts_with("held test_true exclusive with fencing token ")
                && locks.contains("no longer holds it"),
            "{locks}"
        );
        let page = c
            .execute("return document.body.innerText", vec![])
            .await
            .unwrap();
        let page = page.as_str().unwrap();
        assert!(!page.contains("holds test_true"), "{page}");
        assert!(!page.contains("the grant's"), "{page}");
        assert!(page.contains("the window plugin probe is granted"), "{page}");
        assert!(page.contains("labels\tteam=aid"), "{page}");
        screenshot(&c, "runway").await;

        // The board shows a runway's labels and filters on one.
        c.goto(&format!("{base}/?label=team%3Daid")).await.unwrap();
        let row = find(&c, "#runways tr[data-runway='landed']").await;
        assert!(row.text().await.unwrap().contains("team=aid"));
        let others = c
            .execute("return document.querySelectorAll('#runways tr[data-runway]').length", vec![])
            .await
            .unwrap();
        assert_eq!(others, json!(1), "only the labelled runway is shown");

        // The approver's audit page shows the transitions it promises.
        c.goto(&format!("{base}/audit")).await.unwrap();
        find(&c, ".notice").await;
        until(&c, "[...document.querySelectorAll('#timeline li')].some(li => li.textContent.includes('landed') && li.textContent.includes('succeeded'))").await;

        // A second tab of the page is signed in by the first, without the
        // token being asked for again; signing out there signs out both.
        let first = c.window().await.unwrap();
        let second = c.new_window(true).await.unwrap().handle;
        c.switch_to_window(second).await.unwrap();
        c.goto(&format!("{base}/locks")).await.unwrap();
        find(&c, "#locks").await;
        let who = find(&c, "#who").await.text().await.unwrap();
        assert!(who.contains("alice (approver)"), "{who}");
        let kept = c
            .execute("return sessionStorage.length === 1 && localStorage.length === 0", vec![])
            .await
            .unwrap();
        assert_eq!(kept, json!(true), "the token is kept per tab, never on disk");
        find(&c, "#sign-out").await.click().await.unwrap();
        find(&c, "#login").await;
        c.close_window().await.unwrap();
        c.switch_to_window(first).await.unwrap();
        find(&c, "#login").await;
        until(&c, "document.querySelector('[role=alert]')?.textContent.includes('another tab')").await;
        until(&c, "sessionStorage.length === 0").await;

        c.close().await.unwrap();
    });
}

#[test]
fn the_runway_page_draws_its_delegation_tree() {
    let dir = crate::trees::tree_folders();
    let server = Server::start(dir.path());
    let vic = server.token("vic", &["viewer"]);
    crate::trees::grown(&server);
    // A tree that grows while its page is open: its root waits for an
    // approval first.
    server.file(
        r#"
        [[runway]]
        id = "later"
        agent = "orchestrator"
        approval = { required = true }
        input = { children = [{ agent = "probe", action = "ok" }, { agent = "probe", action = "ok" }] }
        "#,
    );

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let base = server.url.clone();
        sign_in(&c, &base, &vic).await;
        // The board says who delegated a child.
        let row = find(&c, "#runways tr[data-runway='boss.5']").await;
        let text = row.text().await.unwrap();
        assert!(text.contains("delegated by boss.3"), "{text}");

        // A child in the middle: its parent linked, its tree's progress as
        // a bar, the race's runways with their states.
        c.goto(&format!("{base}/runways/boss.3")).await.unwrap();
        let parent = find(&c, "#tree-parent").await;
        let said = parent.text().await.unwrap();
        assert_eq!(said, "Delegated by boss, depth 1.");
        let link = find(&c, "#tree-parent a").await;
        assert_eq!(link.attr("href").await.unwrap().as_deref(), Some("/runways/boss"));
        let bar = find(&c, "#tree-progress progress").await;
        assert_eq!(bar.attr("value").await.unwrap().as_deref(), Some("2"));
        assert_eq!(bar.attr("max").await.unwrap().as_deref(), Some("2"));
        let progress = find(&c, "#tree-progress").await.text().await.unwrap();
        assert_eq!(progress.trim(), "2 of 2 done");
        find(&c, "#tree-runways tr[data-runway='boss.4'] [data-state='CANCELLED']").await;
        find(&c, "#tree-runways tr[data-runway='boss.5'] [data-state='SUCCEEDED']").await;

        // The root: every runway below it, each under its parent, in order.
        c.goto(&format!("{base}/runways/boss")).await.unwrap();
        find(&c, "#tree-runways tr[data-runway='boss.5']").await;
        let rows = c
            .execute(
                "return [...document.querySelectorAll('#tree-runways tr')].map(r => \
                 [r.dataset.runway, Number(r.dataset.level), r.querySelector('[data-state]').dataset.state])",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            rows,
            json!([
                ["boss.1", 1, "SUCCEEDED"],
                ["boss.2", 1, "FAILED"],
                ["boss.3", 1, "SUCCEEDED"],
                ["boss.4", 2, "CANCELLED"],
                ["boss.5", 2, "SUCCEEDED"]
            ])
        );
        assert!(c.find(Locator::Css("#tree-parent")).await.is_err(), "a root has no parent");
        let drawn = find(&c, "#tree").await.text().await.unwrap();
        assert!(!drawn.contains("null"), "{drawn}");
        let progress = find(&c, "#tree-progress").await.text().await.unwrap();
        assert_eq!(progress.trim(), "6 of 6 done: delegating");
        screenshot(&c, "tree").await;

        // A runway outside any tree shows none.
        c.goto(&format!("{base}/runways/later")).await.unwrap();
        find(&c, "#history").await;
        let hidden = c
            .execute("return document.getElementById('tree').hidden", vec![])
            .await
            .unwrap();
        assert_eq!(hidden, json!(true));
        // ... until it delegates: its children appear without a reload.
        let approver = server.token("alice", &["approver"]);
        let approved = server.client_as(&approver, &["approve", "later"]);
        assert_eq!(approved.code, 0, "{}", approved.stderr);
        find(&c, "#tree-runways tr[data-runway='later.2'] [data-state='SUCCEEDED']").await;
        find(&c, "#tree-runways tr[data-runway='later.1'] [data-state='SUCCEEDED']").await;
        until(&c, "document.getElementById('tree').hidden === false").await;

        // A hand-off's successor names whom it took over from.
        server.file(
            "[[runway]]\nid = \"shift\"\nagent = \"orchestrator\"\ninput = { handoff = { agent = \"probe\" } }\n",
        );
        assert_eq!(server.client(&["wait", "shift"]).code, 0);
        runway_tests::eventually("shift.next filed", || {
            server.client(&["show", "shift.next"]).code == 0
        });
        c.goto(&format!("{base}/runways/shift.next")).await.unwrap();
        let from = find(&c, "#tree-from").await.text().await.unwrap();
        assert_eq!(from, "Took over from shift (its hand-off).");

        // What a guest says is shown as text: a child's failure quoting
        // its input's markup.
        server.file(
            r#"
            [[runway]]
            id = "markup"
            agent = "orchestrator"
            input = { children = [{ agent = "orchestrator", input = { join = "<b id=guest>bold</b>" } }] }
            "#,
        );
        assert_eq!(server.client(&["wait", "markup", "markup.1"]).code, 1);
        c.goto(&format!("{base}/runways/markup")).await.unwrap();
        let row = find(&c, "#tree-runways tr[data-runway='markup.1'] [data-state='FAILED']").await;
        assert!(row.is_displayed().await.unwrap());
        until(&c, "document.getElementById('tree').textContent.includes('<b id=guest>bold</b>')").await;
        until(&c, "document.getElementById('guest') === null").await;

        c.close().await.unwrap();
    });
}

/// Saves what the browser shows into the repository's `docs/` as
/// `NAME.png` (the README shows them), and into `target/screenshots/`.
async fn document(c: &Client, name: &str) {
    screenshot(c, name).await;
    let png = std::fs::read(screenshots().join(format!("{name}.png"))).unwrap();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::write(docs.join(format!("{name}.png")), png).unwrap();
}

/// The value of `script` (an expression) in the page.
async fn eval(c: &Client, script: &str) -> serde_json::Value {
    c.execute(&format!("return ({script});"), vec![])
        .await
        .unwrap()
}

/// A nightly-like filing: an import and a backup contending for one
/// dataset, a scoring after the import, a fan-out that delegates two
/// runs, a report after all of them, and a probe that fails once, then
/// succeeds, each attempt logging a line that quotes markup.
const PIPELINE: &str = r#"
[[runway]]
id = "import"
agent = "import-applications"
datasets = { test_board = "exclusive" }
input = { count = 3000, seed = 4 }
priority = 10
[[runway]]
id = "backup"
agent = "probe"
action = "ok"
datasets = { test_board = "exclusive", test_archive = "shared" }
[[runway]]
id = "score"
agent = "probe"
action = "ok"
after = ["import"]
datasets = { test_archive = "shared" }
[[runway]]
id = "fanout"
agent = "orchestrator"
after = ["score"]
input = { children = [{ agent = "probe", action = "ok" }, { agent = "probe", action = "ok" }] }
[[runway]]
id = "report"
agent = "probe"
action = "ok"
after = ["fanout", "backup"]
[[runway]]
id = "notify"
agent = "probe"
action = "fail"
after = ["report"]
[[runway]]
id = "quoted"
agent = "probe"
action = "flaky"
input = { say = "<img src=x onerror=alert(1)>" }
retry = { attempts = 2, initial = "10ms", max = "10ms" }
"#;

#[test]
fn the_board_draws_a_filing_as_a_graph_and_a_timeline() {
    let dir = crate::trees::tree_folders();
    let server = Server::start(dir.path());
    let olive = server.token("olive", &["operator"]);
    let vic = server.token("vic", &["viewer"]);
    let ids = server.file(PIPELINE);
    let mut wait = vec!["wait", "--timeout-secs", "120"];
    wait.extend(ids.iter().map(String::as_str));
    server.client(&wait);
    assert_eq!(
        server
            .client(&["wait", "--timeout-secs", "60", "fanout.1", "fanout.2"])
            .code,
        0
    );
    let plan = server
        .trail()
        .into_iter()
        .find(|r| r["event"] == "plan_filed")
        .expect("a PLAN record");
    let seq = plan["seq"].as_u64().unwrap();

    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let base = server.url.clone();
        c.set_window_size(1280, 1000).await.unwrap();
        sign_in(&c, &base, &olive).await;

        // The board groups the filing's runways under it (a delegated
        // runway with its tree's), with start, end and duration.
        let head = find(&c, &format!("#runways tr.filing[data-filing='{seq}']")).await;
        let said = head.text().await.unwrap();
        assert!(said.contains(&format!("Filing #{seq}")) && said.contains("by admin"), "{said}");
        let grouped = eval(
            &c,
            &format!("[...document.querySelectorAll(\"#runways tr[data-filing='{seq}'][data-runway]\")].map(r => r.dataset.runway)"),
        )
        .await;
        assert_eq!(
            grouped,
            json!(["import", "backup", "score", "fanout", "report", "notify", "quoted", "fanout.1", "fanout.2"])
        );
        let took = find(&c, "#runways tr[data-runway='import'] .t-duration").await;
        let took = took.text().await.unwrap();
        assert!(took.ends_with(" ms") || took.ends_with(" s"), "{took}");
        let start = find(&c, "#runways tr[data-runway='import'] .t-start").await;
        assert!(start.text().await.unwrap().contains(':'));
        // The panels of triggers and agents show only when their
        // endpoints answer.
        for (path, panel) in [("/api/triggers", "triggers-panel"), ("/api/agents", "agents-panel")] {
            let (status, _) = crate::server::get(&base, path, &olive);
            let shown = eval(&c, &format!("!!document.getElementById('{panel}')")).await;
            assert_eq!(shown, json!(status == 200), "{path} answered {status}");
        }
        // A plan filed meanwhile appears as a filing of its own, learnt
        // from the trail as it grows.
        server.file("[[runway]]\nid = \"later\"\nagent = \"probe\"\naction = \"ok\"\n");
        let later = find(&c, "#runways tr[data-runway='later'][data-filing]:not([data-filing=''])").await;
        let group: u64 = later.attr("data-filing").await.unwrap().unwrap().parse().unwrap();
        assert!(group > seq, "{group} after {seq}");
        find(&c, &format!("#runways tr.filing[data-filing='{group}']")).await;
        document(&c, "page-board").await;

        // The filing's page: its graph, each runway a node in its state's
        // colour, `after` edges between them.
        find(&c, &format!("a.filing-link[href='/filings/{seq}']")).await.click().await.unwrap();
        find(&c, "#graph-svg g.node[data-runway='import'][data-state='SUCCEEDED']").await;
        find(&c, "#graph-svg g.node.tone-bad[data-runway='notify'][data-state='FAILED']").await;
        find(&c, "#graph-svg path.edge.after[data-from='import'][data-to='score']").await;
        find(&c, "#graph-svg path.edge.after[data-from='backup'][data-to='report']").await;
        // Its spend is the filing's own total (what each runway's `spent`
        // says), not that total once per runway.
        let (_, shown) = crate::server::get(&base, "/api/runways/import", &olive);
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        let runs = shown["spent"]["runs"].as_u64().expect("the filing's runs");
        let said = find(&c, "#filing-budget [data-budget='runs'] td").await;
        assert_eq!(said.text().await.unwrap().trim(), format!("{runs} spent"));
        // The fan-out's children are folded under it until opened.
        assert!(c.find(Locator::Css("#graph-svg g.node[data-runway='fanout.1']")).await.is_err());
        let fold = find(&c, "#graph-svg g.fold[data-toggle='fanout']").await;
        assert_eq!(fold.text().await.unwrap(), "+2");
        fold.click().await.unwrap();
        find(&c, "#graph-svg g.node[data-runway='fanout.2'][data-state='SUCCEEDED']").await;
        find(&c, "#graph-svg path.edge.delegated[data-from='fanout'][data-to='fanout.1']").await;

        // The timeline: one lane per dataset, a run holding two in both;
        // the backup waited for its lock while the import flew.
        let rows = eval(
            &c,
            "[...document.querySelectorAll(\"#gantt-svg g.lane[data-lane='test_board'] g.row\")].map(r => r.dataset.runway).sort()",
        )
        .await;
        assert_eq!(rows, json!(["backup", "import"]));
        find(&c, "#gantt-svg g.lane[data-lane='test_archive'] g.row[data-runway='backup']").await;
        let waited = eval(
            &c,
            "(() => { const lane = \"#gantt-svg g.lane[data-lane='test_board'] \"; \
             const wait = document.querySelector(lane + \"g.row[data-runway='backup'] .seg.wait-locks\"); \
             const flew = document.querySelector(lane + \"g.row[data-runway='import'] .seg.flight\"); \
             return [Number(wait.dataset.ms), Number(wait.dataset.to) >= Number(flew.dataset.from)]; })()",
        )
        .await;
        assert!(waited[0].as_f64().unwrap() > 0.0 && waited[1] == json!(true), "{waited}");
        document(&c, "page-filing").await;
        c.execute("document.getElementById('timeline-title').scrollIntoView()", vec![])
            .await
            .unwrap();
        document(&c, "page-timeline").await;

        // A node clicked opens its runway.
        c.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        find(&c, "#graph-svg g.node[data-runway='import'] a").await.click().await.unwrap();
        until(&c, "location.pathname === '/runways/import'").await;
        find(&c, "#attempts tr[data-attempt='1']").await;

        // Each attempt with its own log lines, and the output, inline, as
        // text: the failed first attempt's log is still there beside the
        // second's, and a guest's markup stays text.
        c.goto(&format!("{base}/runways/quoted")).await.unwrap();
        find(&c, "#attempts tr[data-attempt='2']").await;
        for (n, state) in [(1, "FAILED"), (2, "SUCCEEDED")] {
            let attempt = find(&c, &format!("#attempt-{n}[data-attempt='{n}']")).await;
            let shown = attempt.find(Locator::Css(".state")).await.unwrap();
            assert_eq!(shown.text().await.unwrap(), state);
            let line = attempt.find(Locator::Css("ol.log li")).await.unwrap();
            assert!(line.is_displayed().await.unwrap(), "attempt {n}'s log line is visible");
            let line = line.text().await.unwrap();
            assert!(
                line.contains(&format!("flaky: attempt {n} <img src=x onerror=alert(1)>")),
                "{line}"
            );
        }
        let first = find(&c, "#attempt-1 p.error").await.text().await.unwrap();
        assert!(first.contains("flaky, first attempt"), "{first}");
        let output = find(&c, "#attempt-2 pre").await.text().await.unwrap();
        assert!(output.contains("\"attempt\": 2"), "{output}");
        assert!(c.find(Locator::Css("#attempt-1 pre")).await.is_err(), "a failure has no output");
        assert_eq!(eval(&c, "document.querySelectorAll('#main img').length").await, json!(0));
        let input = find(&c, "#input pre").await.text().await.unwrap();
        assert!(input.contains("<img src=x onerror=alert(1)>"), "{input}");
        let output = find(&c, "#output").await.text().await.unwrap();
        assert!(!output.is_empty(), "the output or its digest is shown");
        let times = find(&c, "#times").await.text().await.unwrap();
        assert!(times.contains(&format!("filing #{seq}")), "{times}");
        let text = eval(&c, "document.getElementById('main').innerText").await;
        assert!(!text.as_str().unwrap().contains("null"), "{text}");
        c.execute("document.getElementById('attempts').scrollIntoView()", vec![])
            .await
            .unwrap();
        document(&c, "page-runway").await;

        // A run that failed is offered a retry.
        c.goto(&format!("{base}/runways/notify")).await.unwrap();
        let retry = find(&c, "#refile").await.text().await.unwrap();
        assert_eq!(retry, "Retry as a new runway");

        // An operator re-files a runway from its page: a new runway,
        // filed in the operator's name.
        c.goto(&format!("{base}/runways/score")).await.unwrap();
        let refile = find(&c, "#refile").await;
        assert_eq!(refile.text().await.unwrap(), "Re-file");
        refile.click().await.unwrap();
        until(&c, "location.pathname === '/runways/score-2'").await;
        let again = server.json(&["show", "score-2"]);
        assert_eq!(again["agent"], "probe");
        assert_eq!(again["manifest"]["after"], json!(["import"]));
        let filed = server
            .trail()
            .into_iter()
            .find(|r| r["event"] == "plan_filed" && r["source"] == "refile of score")
            .expect("the re-filing's PLAN record");
        assert_eq!(filed["by"], "olive");
        assert_eq!(filed["runways"], json!(["score-2"]));

        // A viewer is offered no button, and its forged POST is refused.
        sign_in(&c, &base, &vic).await;
        find(&c, "#runways").await;
        c.goto(&format!("{base}/runways/score")).await.unwrap();
        find(&c, "#history").await;
        assert!(c.find(Locator::Css("#refile")).await.is_err());
        let said = forged_post(&c, "/api/runways/score/refile", &vic).await;
        assert_eq!(said[0], 403, "{said}");

        // On a phone: the filing's page needs no sideways scrolling (the
        // graph scrolls in its own box).
        c.set_window_size(390, 844).await.unwrap();
        // A runway's attempts and their logs too.
        c.goto(&format!("{base}/runways/quoted")).await.unwrap();
        find(&c, "#attempt-2 ol.log li").await;
        until(&c, "document.documentElement.scrollWidth <= window.innerWidth").await;
        c.goto(&format!("{base}/filings/{seq}")).await.unwrap();
        find(&c, "#gantt-svg g.lane").await;
        until(&c, "document.documentElement.scrollWidth <= window.innerWidth").await;
        document(&c, "page-phone").await;
        c.execute("document.getElementById('timeline-title').scrollIntoView()", vec![])
            .await
            .unwrap();
        document(&c, "page-phone-timeline").await;

        c.close().await.unwrap();
    });
}

#[test]
fn the_board_draws_the_shapes_the_other_parts_answer() {
    let dir = folders();
    let server = Server::start(dir.path());
    let vic = server.token("vic", &["viewer"]);
    let driver = Driver::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;
        let base = server.url.clone();
        sign_in(&c, &base, &vic).await;
        find(&c, "#runways").await;
        // Drawn from the shapes `/api/triggers` and `/api/agents` answer,
        // as the board draws them once they do; text stays text.
        let drawn = eval(
            &c,
            r#"(() => {
              const soon = new Date(Date.now() + 9000e3).toISOString();
              const t = triggersPanel([{ id: "nightly", on: { schedule: "0 1 * * *" }, kind: "schedule",
                state: "active", fired: 3, last_fired: new Date().toISOString(), next: [soon], runways: [] },
                { id: "<b id=bold>x</b>", on: { topic: "a" }, kind: "topic", state: "paused", fired: 0,
                  last_fired: null, next: [], runways: [] }]);
              const a = agentsPanel([{ agent: "scorer-a", runs: 10, succeeded: 9, failed: 1, success_ratio: 0.9,
                  p50_ms: 120, p95_ms: 900, fuel_per_run: 1e6, in_flight: 1, last_failure: "timed out",
                  breaker: "open", breaker_until: soon }]);
              // The board's own panels (drawn from the live endpoints) may
              // be there too, with the same ids: read these ones.
              main.append(t, a);
              return [t.querySelector("tr[data-trigger='nightly']").textContent,
                !!t.querySelector(".badge.paused"), document.getElementById("bold") === null,
                a.querySelector("tr[data-agent='scorer-a'] .badge.breaker.open").textContent,
                a.querySelector(".ratio-fill").style.width];
            })()"#,
        )
        .await;
        let nightly = drawn[0].as_str().unwrap();
        assert!(nightly.contains("schedule 0 1 * * *") && nightly.contains("in 2 h"), "{drawn}");
        assert_eq!(drawn[1], json!(true), "{drawn}");
        assert_eq!(drawn[2], json!(true), "markup in an id stays text: {drawn}");
        assert_eq!(drawn[3], json!("breaker open"), "{drawn}");
        assert_eq!(drawn[4], json!("90%"), "{drawn}");

        // A graph drawn from the fields flows and conditions add to a
        // runway (`when`, `takes_from`) and the SKIPPED state: a data
        // edge, a conditional node with its expression, a skipped branch
        // greyed; spend against a plan's budget as bars.
        let graph = eval(
            &c,
            r##"(() => {
              const r = (id, state, extra) => Object.assign({ id, agent: "probe", state,
                manifest: { after: [], datasets: {} }, started_at: null, ended_at: null }, extra);
              const g = drawGraph([r("score", "SUCCEEDED"),
                r("appeal", "SKIPPED", { when: "score.risk > 3", takes_from: ["score"], manifest: { after: ["score"], datasets: {} } }),
                r("award", "WAITING_BREAKER", { when: "!skipped('appeal')", manifest: { after: ["appeal"], datasets: {} } }),
                r("cap", "BUDGET_EXHAUSTED", { manifest: { after: ["score"], datasets: {} } })], new Map(), new Set(), () => {});
              main.prepend(el("div", { class: "chart", id: "synthetic" }, g),
                budgetView({ fuel: 1e12, runs: 500 }, { fuel: 5e11, runs: 500 }));
              const one = (css) => g.querySelectorAll(css).length;
              return [one("path.edge.data[data-from='score'][data-to='appeal']"),
                g.querySelector("g.node.conditional[data-runway='appeal'] .cond title").textContent,
                one("g.node.tone-skipped[data-runway='appeal']"), one("path.edge.skipped[data-to='appeal']"),
                one("path.edge.after.conditional[data-from='appeal'][data-to='award']"),
                one("g.node.tone-wait[data-state='WAITING_BREAKER']"), one("g.node.tone-bad[data-state='BUDGET_EXHAUSTED']"),
                document.querySelector("#budget [data-budget='fuel'] .ratio-fill").style.width,
                !!document.querySelector("#budget [data-budget='runs'] .ratio.over")];
            })()"##,
        )
        .await;
        assert_eq!(
            graph,
            json!([1, "Runs only when score.risk > 3", 1, 1, 1, 1, 1, "50%", true])
        );
        screenshot(&c, "synthetic-graph").await;
        c.close().await.unwrap();
    });
}
