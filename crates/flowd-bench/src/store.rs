//! The store scenario (issue 16): the trivial catch workflow, isolation fork and reuse, on one
//! flowd node over SQLite, on one node over PostgreSQL, and on two nodes sharing one PostgreSQL
//! database with the load spread over both (worker `i` on node `i mod 2`), one setup after the
//! other in the same run, on a PostgreSQL server the bench starts itself; with each node's memory.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::baselines::TRIVIAL;
use crate::flowd::{catch_spec, Created, Flowd};
use crate::load::{self, Load, Target};
use crate::postgres::Postgres;
use crate::procfs;
use crate::report::{NodeMemory, Outcome, Row, StoreReport};
use crate::{measured_row, Budget};

/// A store and a number of nodes, with the keys of its two rows.
struct Setup {
    name: &'static str,
    /// `None`: SQLite in the node's data dir.
    database: Option<&'static str>,
    /// The database's `synchronous_commit` is `off`: a commit is answered once in the server's
    /// WAL buffers (flushed within 3 × `wal_writer_delay`), not once on disk — SQLite's
    /// `synchronous = NORMAL` (flowd's setting) does not wait for the disk either.
    asynchronous_commit: bool,
    nodes: usize,
    fork_key: &'static str,
    reuse_key: &'static str,
}

const SETUPS: [Setup; 4] = [
    Setup {
        name: "SQLite, 1 node",
        database: None,
        asynchronous_commit: false,
        nodes: 1,
        fork_key: "sqlite-fork",
        reuse_key: "sqlite-reuse",
    },
    Setup {
        name: "PostgreSQL, 1 node",
        database: Some("flowd_one_node"),
        asynchronous_commit: false,
        nodes: 1,
        fork_key: "postgres-fork",
        reuse_key: "postgres-reuse",
    },
    Setup {
        name: "PostgreSQL, 1 node, synchronous_commit off",
        database: Some("flowd_one_node_async"),
        asynchronous_commit: true,
        nodes: 1,
        fork_key: "postgres-async-fork",
        reuse_key: "postgres-async-reuse",
    },
    Setup {
        name: "PostgreSQL, 2 nodes",
        database: Some("flowd_two_nodes"),
        asynchronous_commit: false,
        nodes: 2,
        fork_key: "postgres2-fork",
        reuse_key: "postgres2-reuse",
    },
];

pub async fn run(
    binary: &Path,
    dir: &Path,
    runtime_dir: &Path,
    budget: &Budget,
) -> anyhow::Result<StoreReport> {
    let postgres = tokio::task::block_in_place(|| Postgres::start(&dir.join("postgres")))?;
    let mut report = StoreReport {
        postgres: postgres.describe(),
        ..StoreReport::default()
    };
    for setup in &SETUPS {
        crate::progress!("store: {} …", setup.name);
        let database = match setup.database {
            Some(name) => Some(tokio::task::block_in_place(|| {
                postgres.create_database(name, setup.asynchronous_commit)
            })?),
            None => None,
        };
        if let Err(error) = run_setup(
            setup,
            database.as_deref(),
            binary,
            dir,
            runtime_dir,
            budget,
            &mut report,
        )
        .await
        {
            report.notes.push(format!("{}: {error:#}", setup.name));
        }
    }
    Ok(report)
}

async fn run_setup(
    setup: &Setup,
    database: Option<&str>,
    binary: &Path,
    dir: &Path,
    runtime_dir: &Path,
    budget: &Budget,
    report: &mut StoreReport,
) -> anyhow::Result<()> {
    let mut args = Vec::new();
    if let Some(url) = database {
        args.extend(["--database", url]);
    }
    let mut nodes = Vec::new();
    let first_dir = dir.join(format!("{}-node-0", setup.fork_key));
    nodes.push(Flowd::start(binary, &first_dir, runtime_dir, &args).await?);
    let fork = nodes[0]
        .api
        .create_ok(&catch_spec("trivial", TRIVIAL, None))
        .await?;
    let reuse = nodes[0]
        .api
        .create(&catch_spec("trivial-reuse", TRIVIAL, Some("reuse")))
        .await?;
    for n in 1..setup.nodes {
        let node_dir = dir.join(format!("{}-node-{n}", setup.fork_key));
        nodes.push(Flowd::start(binary, &node_dir, runtime_dir, &args).await?);
    }
    let spread = if setup.nodes > 1 {
        "; c=1: the one client on node A, c=16: 8 clients on each node"
    } else {
        ""
    };

    let (c1, c16) = measure_on(&nodes, &fork, budget).await;
    report.rows.push(measured_row(
        setup.fork_key,
        &format!("{}: trivial, fork", setup.name),
        format!("{}{spread}", node_note(setup)),
        &c1,
        &c16,
    ));
    let reuse_name = format!("{}: trivial, reuse", setup.name);
    match reuse {
        Ok(created) => {
            let (c1, c16) = measure_on(&nodes, &created, budget).await;
            report.rows.push(measured_row(
                setup.reuse_key,
                &reuse_name,
                format!("{}{spread}", node_note(setup)),
                &c1,
                &c16,
            ));
        }
        Err((status, body)) => report.rows.push(Row {
            key: setup.reuse_key,
            name: reuse_name,
            outcome: Outcome::NotAvailable(format!("creating it answered {status}: {body}")),
            note: String::new(),
        }),
    }

    for (n, node) in nodes.iter().enumerate() {
        let pid = node.pid();
        report.nodes.push(NodeMemory {
            node: if setup.nodes > 1 {
                format!("{}, node {}", setup.name, char::from(b'A' + n as u8))
            } else {
                setup.name.to_string()
            },
            rss_kb: procfs::rss_kb(pid),
            peak_kb: procfs::peak_rss_kb(pid),
        });
    }
    for node in nodes {
        node.stop();
    }
    Ok(())
}

fn node_note(setup: &Setup) -> String {
    match setup.database {
        None => "store: SQLite file in the data dir".into(),
        Some(_) => format!("store: PostgreSQL, {} node(s) on one database", setup.nodes),
    }
}

/// Warm-up on every node (each starts its own warm instance), then c=1 and c=16 spread over
/// the nodes.
async fn measure_on(
    nodes: &[Flowd],
    created: &Created,
    budget: &Budget,
) -> (load::Measured, load::Measured) {
    let targets: Vec<Target> = nodes
        .iter()
        .map(|node| node.hook_json(created, &json!({"name": "bench"})))
        .collect();
    for target in &targets {
        let _ = load::run(
            target,
            Load {
                concurrency: 1,
                requests: budget.warmup,
                time: Duration::from_secs(60),
            },
        )
        .await;
    }
    let c1 = load::run_spread(&targets, budget.c1).await;
    let c16 = load::run_spread(&targets, budget.c16).await;
    (c1, c16)
}
