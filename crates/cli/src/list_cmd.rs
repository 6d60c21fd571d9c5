//! `strata list`: the records of a table a user may read, filtered, ordered and counted — from a
//! scenario's or a database's organisation, or through a server.

use anyhow::anyhow;
use strata_engine::{ListQuery, Organization, Plan};
use strata_server::limits;

/// What to list.
pub struct ListArgs<'a> {
    pub table: &'a str,
    /// The reader (through a server, the key's own user when `None`).
    pub user: Option<&'a str>,
    pub filter: Option<&'a str>,
    pub orderby: Option<&'a str>,
    pub count: bool,
    /// At most this many records (every record when `None`).
    pub limit: Option<usize>,
}

impl ListArgs<'_> {
    fn check_limit(&self) -> anyhow::Result<()> {
        match self.limit {
            Some(0) => Err(anyhow!("bad_page_size: --limit must be at least 1")),
            _ => Ok(()),
        }
    }
}

/// Lists from an organisation in memory: one key per line, then the count when asked.
pub fn local(org: &Organization, args: &ListArgs) -> anyhow::Result<()> {
    args.check_limit()?;
    let name = args
        .user
        .ok_or_else(|| anyhow!("--as: whose readable records to list"))?;
    let user = org
        .user_id(name)
        .ok_or_else(|| anyhow!("unknown user `{name}`"))?;
    let table = org
        .table_id(args.table)
        .ok_or_else(|| anyhow!("unknown table `{}`", args.table))?;
    let filter = args
        .filter
        .map(strata_ops::parse_filter)
        .transpose()
        .map_err(|e| anyhow!("bad_filter: --filter: {e}"))?;
    let order = args
        .orderby
        .map(strata_ops::parse_order)
        .transpose()
        .map_err(|e| anyhow!("bad_order: --orderby: {e}"))?
        .unwrap_or_default();
    let mut query = ListQuery {
        filter,
        order,
        after: None,
        limit: args.limit.unwrap_or(usize::MAX).min(limits::MAX_PAGE),
        count: args.count,
        plan: Plan::Auto,
        work_budget: None,
        impersonator: None,
    };
    let mut left = args.limit.unwrap_or(usize::MAX);
    let mut total = None;
    loop {
        query.limit = query.limit.min(left);
        let page = org.list(user, table, &query).map_err(|e| anyhow!("{e}"))?;
        total = total.or(page.total);
        query.count = false;
        for r in &page.records {
            println!("{}", org.record(*r).key);
        }
        left -= page.records.len();
        match page.next {
            Some(next) if left > 0 => query.after = Some(next),
            _ => break,
        }
    }
    if let Some(total) = total {
        eprintln!("count: {total}");
    }
    Ok(())
}

/// Lists through a server, following its cursors; with `--limit`, one page and its cursor.
pub fn remote(
    server: &str,
    key: &str,
    org: &str,
    args: &ListArgs,
    cursor: Option<&str>,
) -> anyhow::Result<()> {
    args.check_limit()?;
    let base = format!(
        "/api/v1/orgs/{}/tables/{}/records?limit={}{}{}{}",
        crate::remote::encode(org),
        crate::remote::encode(args.table),
        args.limit.unwrap_or(limits::MAX_PAGE),
        args.filter
            .map(|f| format!("&filter={}", crate::remote::encode(f)))
            .unwrap_or_default(),
        args.orderby
            .map(|o| format!("&orderby={}", crate::remote::encode(o)))
            .unwrap_or_default(),
        args.user
            .map(|u| format!("&user={}", crate::remote::encode(u)))
            .unwrap_or_default(),
    );
    let mut cursor = cursor.map(str::to_owned);
    let mut first = true;
    loop {
        let mut path = base.clone();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", crate::remote::encode(c)));
        }
        if first && args.count {
            path.push_str("&count=true");
        }
        let answer = crate::remote::remote(server, key, "GET", &path, None)?;
        for r in answer["records"].as_array().into_iter().flatten() {
            println!("{}", r.as_str().unwrap_or_default());
        }
        if let Some(total) = answer["count"].as_u64().filter(|_| first) {
            eprintln!("count: {total}");
        }
        first = false;
        cursor = answer["next_cursor"].as_str().map(str::to_owned);
        match &cursor {
            Some(next) if args.limit.is_some() => {
                eprintln!("next cursor: {next}");
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    Ok(())
}
