//! `kvm ps -o`: the columns people pick, as BSD ps names them.

use crate::escape::printable;
use kvm::Process;

/// A column: its `-o` name, header, and whether it is left-aligned.
struct Column {
    name: &'static str,
    header: &'static str,
    left: bool,
}

const COLUMNS: &[Column] = &[
    Column {
        name: "pid",
        header: "PID",
        left: false,
    },
    Column {
        name: "ppid",
        header: "PPID",
        left: false,
    },
    Column {
        name: "pgid",
        header: "PGID",
        left: false,
    },
    Column {
        name: "sid",
        header: "SID",
        left: false,
    },
    Column {
        name: "uid",
        header: "UID",
        left: false,
    },
    Column {
        name: "gid",
        header: "GID",
        left: false,
    },
    Column {
        name: "euid",
        header: "EUID",
        left: false,
    },
    Column {
        name: "tt",
        header: "TT",
        left: true,
    },
    Column {
        name: "stat",
        header: "S",
        left: true,
    },
    Column {
        name: "rss",
        header: "RSS",
        left: false,
    },
    Column {
        name: "vsz",
        header: "VSZ",
        left: false,
    },
    Column {
        name: "nlwp",
        header: "NLWP",
        left: false,
    },
    Column {
        name: "task",
        header: "TASK",
        left: false,
    },
    Column {
        name: "wchan",
        header: "WCHAN",
        left: true,
    },
    Column {
        name: "comm",
        header: "COMM",
        left: true,
    },
    Column {
        name: "args",
        header: "COMMAND",
        left: true,
    },
];

/// The columns of one `-o` (indexes into the table).
#[derive(Clone, Debug)]
pub struct Columns(pub Vec<usize>);

/// The columns of `-o a,b,c`.
pub fn parse(list: &str) -> Result<Columns, String> {
    list.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| {
            COLUMNS.iter().position(|k| k.name == c).ok_or_else(|| {
                let known: Vec<&str> = COLUMNS.iter().map(|k| k.name).collect();
                format!("-o {c}: no such column (known: {})", known.join(","))
            })
        })
        .collect::<Result<_, _>>()
        .map(Columns)
}

/// `v` as a column shows it: `-` when unavailable.
fn shown<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// Whether `cols` show the wait channel (which costs a backtrace a
/// process).
pub fn wants_wchan(cols: &[usize]) -> bool {
    cols.iter().any(|&c| COLUMNS[c].name == "wchan")
}

/// One row: the process, its command line as the default listing shows
/// it, and its wait channel (`-` when it runs, or was not asked for).
pub struct Row<'a> {
    pub p: &'a Process,
    pub args: String,
    pub wchan: String,
}

/// The value of column `c` for row `r` (`rss` and `vsz` in KiB).
fn value(c: usize, r: &Row<'_>, page_kib: u64) -> String {
    let p = r.p;
    match COLUMNS[c].name {
        "pid" => super::pid_shown(p),
        "ppid" => shown(p.ppid),
        "pgid" => shown(p.pgrp),
        "sid" => shown(p.session),
        "uid" => shown(p.uid),
        "gid" => shown(p.gid),
        "euid" => shown(p.euid),
        "tt" => p.tty.as_deref().map_or("-".into(), |t| {
            printable(t.strip_prefix("tty").unwrap_or(t)).into_owned()
        }),
        "stat" => shown(p.state),
        "rss" => shown(p.rss_pages.map(|r| r * page_kib)),
        "vsz" => shown(p.vsize_pages.map(|v| v * page_kib)),
        "nlwp" => p.threads.len().to_string(),
        "task" => format!("{:#x}", p.task),
        "wchan" => printable(&r.wchan).into_owned(),
        "comm" => printable(&p.comm).into_owned(),
        _ => r.args.clone(),
    }
}

/// The rows of `cols` for `rows` (each a process and its shown command
/// line), columns as wide as their widest cell; the last column is not
/// padded.
pub fn render(cols: &[usize], rows: &[Row<'_>], page_kib: u64) -> Vec<String> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| cols.iter().map(|&c| value(c, r, page_kib)).collect())
        .collect();
    let width: Vec<usize> = cols
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([COLUMNS[c].header.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |vals: Vec<String>| {
        let n = vals.len();
        let parts: Vec<String> = vals
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let w = width[i];
                if i + 1 == n && COLUMNS[cols[i]].left {
                    v
                } else if COLUMNS[cols[i]].left {
                    format!("{v:<w$}")
                } else {
                    format!("{v:>w$}")
                }
            })
            .collect();
        parts.join(" ")
    };
    let header = line(cols.iter().map(|&c| COLUMNS[c].header.to_owned()).collect());
    std::iter::once(header)
        .chain(cells.into_iter().map(line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_columns_are_named() {
        assert_eq!(parse("pid,comm").unwrap().0.len(), 2);
        let e = parse("pid,time").unwrap_err();
        assert!(e.contains("-o time") && e.contains("known: pid,"), "{e}");
        assert!(wants_wchan(&parse("pid,wchan").unwrap().0));
    }
}
