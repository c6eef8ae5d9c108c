//! Every statement bosun sends to the fleet database, and its typed call.
//!
//! Time is the database's: liveness and leases are `now() < expires_at`, expiries are
//! `now() + ttl`. Each peer's periodic work is one statement (the round: heartbeat,
//! renew held leases, try to acquire wanted ones), so it is atomic and costs one round
//! trip. Statements that must wake other peers NOTIFY in the same statement, so the
//! notification is sent exactly when the row is committed.

use std::time::{Duration, SystemTime};

use tokio_postgres::{Client, Error, Row, Statement};

use crate::commands::{Action, Command, CommandReport, ReportRow, RowState, Target};
use crate::schema::quote;

/// Rows returned by one pull, at most.
pub(crate) const PULL_LIMIT: i64 = 100;
/// Dead and left peers' rows are deleted this long after their heartbeat expired (a
/// clean leave expires it at once).
pub(crate) const PEER_RETENTION: &str = "1 day";
/// Commands (and their acks) are deleted after this long.
pub(crate) const COMMAND_RETENTION: &str = "7 days";

/// The statements for one schema.
pub(crate) struct Sql {
    /// The NOTIFY channel: `<schema>.fleet`.
    pub channel: String,
    pub listen: String,
    round: String,
    pull: String,
    claim: String,
    reject: String,
    ack: String,
    interrupted: String,
    release: String,
    deregister: String,
    submit: String,
    command: String,
    report_rows: String,
    peers: String,
    leases: String,
    housekeeping: String,
}

impl Sql {
    pub fn new(schema: &str) -> Sql {
        let s = quote(schema);
        let channel = format!("{schema}.fleet");
        let ttl = "$6::float8 * interval '1 millisecond'";
        Sql {
            listen: format!("LISTEN \"{channel}\""),
            channel,
            round: round_sql(&s, ttl),
            // Unclaimed commands this peer should run, and its own claims of this boot
            // (a claim whose answer was lost with the connection).
            pull: format!(
                "SELECT c.id, c.action, c.target, c.created_by, c.created_at, a.peer IS NOT NULL
                 FROM {s}.command c LEFT JOIN {s}.command_ack a ON a.command_id = c.id AND a.peer = $1
                 WHERE (a.peer IS NULL AND c.expires_at > now()
                        AND ($1 = ANY(c.expected)
                             OR c.created_at >= (SELECT registered_at FROM {s}.peer WHERE name = $1)))
                    OR (a.boot_id = $2 AND a.state = 'running')
                 ORDER BY c.id LIMIT {PULL_LIMIT}"
            ),
            claim: format!(
                "INSERT INTO {s}.command_ack (command_id, peer, boot_id, state) VALUES ($1, $2, $3, 'running')
                 ON CONFLICT DO NOTHING RETURNING command_id"
            ),
            reject: format!(
                "WITH r AS (INSERT INTO {s}.command_ack (command_id, peer, boot_id, state, detail, finished_at)
                   VALUES ($1, $2, $3, 'failed', $4, now()) ON CONFLICT DO NOTHING RETURNING command_id)
                 SELECT pg_notify($5, 'ack ' || command_id) FROM r"
            ),
            ack: format!(
                "WITH u AS (UPDATE {s}.command_ack SET state = $4, exit_code = $5, detail = $6, finished_at = now()
                   WHERE command_id = $1 AND peer = $2 AND boot_id = $3 RETURNING command_id)
                 SELECT pg_notify($7, 'ack ' || command_id) FROM u"
            ),
            interrupted: format!(
                "WITH u AS (UPDATE {s}.command_ack
                   SET state = 'failed', detail = 'interrupted: bosun restarted while it ran', finished_at = now()
                   WHERE peer = $1 AND state = 'running' AND boot_id <> $2 RETURNING command_id)
                 SELECT pg_notify($3, 'ack ' || command_id) FROM u"
            ),
            release: format!(
                "WITH r AS (UPDATE {s}.lease SET expires_at = now()
                   WHERE name = ANY($3::text[]) AND holder = $1 AND boot_id = $2 AND expires_at > now()
                   RETURNING name)
                 SELECT pg_notify($4, 'lease ' || name) FROM r"
            ),
            deregister: format!(
                "UPDATE {s}.peer SET expires_at = now(), left_at = now() WHERE name = $1 AND boot_id = $2"
            ),
            submit: format!(
                "WITH c AS (INSERT INTO {s}.command (action, target, created_by, expires_at, expected)
                   VALUES ($1, $2, $3, now() + $4::float8 * interval '1 millisecond',
                           ARRAY(SELECT name FROM {s}.peer WHERE expires_at > now() ORDER BY name))
                   RETURNING id)
                 SELECT id, pg_notify($5, 'command ' || id) FROM c"
            ),
            command: format!(
                "SELECT id, action, target, created_by, created_at, expected FROM {s}.command WHERE id = $1"
            ),
            report_rows: format!(
                "SELECT e.peer, a.state, a.exit_code, coalesce(a.detail, ''), a.finished_at,
                        coalesce(p.expires_at > now(), false)
                 FROM (SELECT unnest(expected) AS peer FROM {s}.command WHERE id = $1
                       UNION SELECT peer FROM {s}.command_ack WHERE command_id = $1) e
                 LEFT JOIN {s}.command_ack a ON a.command_id = $1 AND a.peer = e.peer
                 LEFT JOIN {s}.peer p ON p.name = e.peer
                 ORDER BY e.peer"
            ),
            peers: format!(
                "SELECT name, roles, url, version, boot_id, started_at, heartbeat_at, expires_at > now(),
                        extract(epoch FROM now() - heartbeat_at)::float8,
                        coalesce(left_at >= heartbeat_at, false)
                 FROM {s}.peer ORDER BY name"
            ),
            leases: format!(
                "SELECT name, holder, term, acquired_at, expires_at > now() FROM {s}.lease ORDER BY name"
            ),
            housekeeping: format!(
                "WITH p AS (DELETE FROM {s}.peer WHERE expires_at < now() - interval '{PEER_RETENTION}' RETURNING 1),
                      c AS (DELETE FROM {s}.command WHERE created_at < now() - interval '{COMMAND_RETENTION}' RETURNING 1)
                 SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM c)"
            ),
        }
    }
}

/// The round: heartbeat, renew held leases, acquire wanted ones, in one statement.
fn round_sql(s: &str, ttl: &str) -> String {
    format!(
        "WITH hb AS (
           INSERT INTO {s}.peer AS p (name, boot_id, roles, url, version, registered_at, started_at, heartbeat_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, now(), now(), now(), now() + {ttl})
           ON CONFLICT (name) DO UPDATE SET
             boot_id = EXCLUDED.boot_id, roles = EXCLUDED.roles, url = EXCLUDED.url, version = EXCLUDED.version,
             started_at = CASE WHEN p.boot_id = EXCLUDED.boot_id THEN p.started_at ELSE now() END,
             heartbeat_at = now(), expires_at = EXCLUDED.expires_at, left_at = NULL
           WHERE p.boot_id = EXCLUDED.boot_id OR p.expires_at <= now()
           RETURNING p.name),
         ren AS (
           UPDATE {s}.lease AS l SET renewed_at = now(), expires_at = now() + {ttl}
           FROM unnest($7::text[], $8::bigint[]) AS h(name, term)
           WHERE l.name = h.name AND l.term = h.term AND l.holder = $1 AND l.boot_id = $2
             AND l.expires_at > now()
           RETURNING l.name, l.term),
         acq AS (
           INSERT INTO {s}.lease AS l (name, holder, boot_id, term, acquired_at, renewed_at, expires_at)
           SELECT w.name, $1, $2, 1, now(), now(), now() + {ttl} FROM unnest($9::text[]) AS w(name)
           ON CONFLICT (name) DO UPDATE SET
             holder = EXCLUDED.holder, boot_id = EXCLUDED.boot_id, term = l.term + 1,
             acquired_at = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at
           WHERE l.expires_at <= now() OR (l.holder = EXCLUDED.holder AND l.boot_id = EXCLUDED.boot_id)
           RETURNING l.name, l.term)
         SELECT 'peer'::text, name, 0::bigint, ''::text, 0::float8 FROM hb
         UNION ALL SELECT 'held', name, term, '', 0 FROM ren
         UNION ALL SELECT 'held', name, term, '', 0 FROM acq
         UNION ALL SELECT 'other', l.name, l.term, l.holder, extract(epoch FROM l.expires_at - now())::float8
           FROM {s}.lease l
           WHERE (l.name = ANY($7::text[]) OR l.name = ANY($9::text[])) AND l.expires_at > now()
             AND l.name NOT IN (SELECT name FROM ren) AND l.name NOT IN (SELECT name FROM acq)"
    )
}

/// Who this peer is, as the round statement writes it.
#[derive(Debug, Clone)]
pub(crate) struct Me {
    pub name: String,
    pub boot_id: String,
    pub roles: Vec<String>,
    pub url: String,
    pub version: String,
    pub ttl: Duration,
}

impl Me {
    fn ttl_ms(&self) -> f64 {
        self.ttl.as_secs_f64() * 1000.0
    }
}

/// Statements prepared once per connection (the ones sent every few seconds).
pub(crate) struct Prepared {
    round: Statement,
    pull: Statement,
}

impl Prepared {
    pub async fn new(client: &Client, sql: &Sql) -> Result<Prepared, Error> {
        Ok(Prepared {
            round: client.prepare(&sql.round).await?,
            pull: client.prepare(&sql.pull).await?,
        })
    }
}

/// What one round found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct RoundReply {
    /// The heartbeat was written (false: another live boot uses this name).
    pub registered: bool,
    /// Leases granted to this peer (renewed or acquired), with their terms.
    pub held: Vec<(String, i64)>,
    /// Asked-for leases held by someone else: (unit, holder, time until it expires).
    pub others: Vec<(String, String, Duration)>,
}

/// The round: heartbeat, renew `held` (unit, term), try to acquire `wanted`.
pub(crate) async fn round(
    client: &Client,
    prepared: &Prepared,
    me: &Me,
    held: &[(String, i64)],
    wanted: &[String],
) -> Result<RoundReply, Error> {
    let names: Vec<&str> = held.iter().map(|(n, _)| n.as_str()).collect();
    let terms: Vec<i64> = held.iter().map(|(_, t)| *t).collect();
    let rows = client
        .query(
            &prepared.round,
            &[
                &me.name,
                &me.boot_id,
                &me.roles,
                &me.url,
                &me.version,
                &me.ttl_ms(),
                &names,
                &terms,
                &wanted,
            ],
        )
        .await?;
    let mut reply = RoundReply::default();
    for row in rows {
        let kind: &str = row.get(0);
        let name: String = row.get(1);
        match kind {
            "peer" => reply.registered = true,
            "held" => reply.held.push((name, row.get(2))),
            _ => {
                let left: f64 = row.get(4);
                let left = Duration::try_from_secs_f64(left.max(0.0)).unwrap_or_default();
                reply.others.push((name, row.get(3), left));
            }
        }
    }
    Ok(reply)
}

/// A row of a pull.
#[derive(Debug, Clone)]
pub(crate) enum Pulled {
    /// A valid command, and whether this boot has claimed it already.
    Valid { command: Command, claimed: bool },
    /// A row bosun does not accept (unknown verb, bad name): its id and why.
    Invalid { id: i64, why: String },
}

/// Commands to run: unclaimed ones and this boot's own unanswered claims.
pub(crate) async fn pull(
    client: &Client,
    prepared: &Prepared,
    me: &Me,
) -> Result<Vec<Pulled>, Error> {
    let rows = client
        .query(&prepared.pull, &[&me.name, &me.boot_id])
        .await?;
    Ok(rows.iter().map(pulled).collect())
}

fn pulled(row: &Row) -> Pulled {
    let id: i64 = row.get(0);
    let action: &str = row.get(1);
    let target: &str = row.get(2);
    let Some(action) = Action::parse(action) else {
        return Pulled::Invalid {
            id,
            why: format!(
                "this peer (bosun {}) does not know the action {action:?}",
                env!("CARGO_PKG_VERSION")
            ),
        };
    };
    match Target::parse(target) {
        Ok(target) => Pulled::Valid {
            command: Command {
                id,
                action,
                target,
                created_by: row.get(3),
                created_at: row.get(4),
            },
            claimed: row.get(5),
        },
        Err(why) => Pulled::Invalid { id, why },
    }
}

/// Claims a command for this boot; false when it was claimed already.
pub(crate) async fn claim(client: &Client, sql: &Sql, me: &Me, id: i64) -> Result<bool, Error> {
    Ok(!client
        .query(&sql.claim, &[&id, &me.name, &me.boot_id])
        .await?
        .is_empty())
}

/// Acknowledges a row bosun refuses to run as failed.
pub(crate) async fn reject(
    client: &Client,
    sql: &Sql,
    me: &Me,
    id: i64,
    why: &str,
) -> Result<(), Error> {
    client
        .execute(
            &sql.reject,
            &[&id, &me.name, &me.boot_id, &why, &sql.channel],
        )
        .await?;
    Ok(())
}

/// Longest `detail` stored with an ack (the caller's note is cut there).
pub(crate) const MAX_DETAIL: usize = 4096;

/// `s` cut to at most `max` bytes, on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes the outcome of a claimed command.
pub(crate) async fn ack(
    client: &Client,
    sql: &Sql,
    me: &Me,
    id: i64,
    outcome: &crate::Outcome,
) -> Result<(), Error> {
    let detail = cut(&outcome.detail, MAX_DETAIL);
    client
        .execute(
            &sql.ack,
            &[
                &id,
                &me.name,
                &me.boot_id,
                &outcome.state.as_str(),
                &outcome.exit_code,
                &detail,
                &sql.channel,
            ],
        )
        .await?;
    Ok(())
}

/// Marks claims of earlier boots of this peer that never finished as failed.
pub(crate) async fn interrupted(client: &Client, sql: &Sql, me: &Me) -> Result<u64, Error> {
    client
        .execute(&sql.interrupted, &[&me.name, &me.boot_id, &sql.channel])
        .await
}

/// Gives up the leases of `units` held by this boot, waking the standbys.
pub(crate) async fn release(
    client: &Client,
    sql: &Sql,
    me: &Me,
    units: &[String],
) -> Result<u64, Error> {
    client
        .execute(&sql.release, &[&me.name, &me.boot_id, &units, &sql.channel])
        .await
}

/// Marks this peer as left at once (a clean stop): not live, and `left`, not `dead`.
pub(crate) async fn deregister(client: &Client, sql: &Sql, me: &Me) -> Result<u64, Error> {
    client
        .execute(&sql.deregister, &[&me.name, &me.boot_id])
        .await
}

/// Inserts a command (expected: the live peers) and wakes the peers. Returns its id.
pub(crate) async fn submit(
    client: &Client,
    sql: &Sql,
    by: &str,
    action: Action,
    target: &Target,
    catch_up: Duration,
) -> Result<i64, Error> {
    let row = client
        .query_one(
            &sql.submit,
            &[
                &action.as_str(),
                &target.to_string(),
                &by,
                &(catch_up.as_secs_f64() * 1000.0),
                &sql.channel,
            ],
        )
        .await?;
    Ok(row.get(0))
}

/// A command and every peer's answer, or None when there is no such command.
pub(crate) async fn report(
    client: &Client,
    sql: &Sql,
    id: i64,
) -> Result<Option<CommandReport>, Error> {
    let Some(c) = client.query_opt(&sql.command, &[&id]).await? else {
        return Ok(None);
    };
    let expected: Vec<String> = c.get(5);
    let action: &str = c.get(1);
    let target: &str = c.get(2);
    let rows = client.query(&sql.report_rows, &[&id]).await?;
    Ok(Some(CommandReport {
        id,
        // A row written by a newer bosun with a verb this one does not know shows as
        // "run" of the raw target only if it parses; otherwise it has no report here.
        action: match Action::parse(action) {
            Some(a) => a,
            None => return Ok(None),
        },
        target: match Target::parse(target) {
            Ok(t) => t,
            Err(_) => return Ok(None),
        },
        created_by: c.get(3),
        created_at: c.get(4),
        rows: rows
            .iter()
            .map(|r| {
                let peer: String = r.get(0);
                ReportRow {
                    expected: expected.contains(&peer),
                    peer,
                    state: RowState::from_db(r.get(1)),
                    exit_code: r.get(2),
                    detail: r.get(3),
                    finished_at: r.get(4),
                    live: r.get(5),
                }
            })
            .collect(),
    }))
}

/// A peer's registration, as `ctl fleet status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    /// Its `[fleet] name`.
    pub name: String,
    /// Its active roles.
    pub roles: Vec<String>,
    /// Its `[fleet] url`.
    pub url: String,
    /// Its bosun version.
    pub version: String,
    /// Its boot id (new at every start of bosun).
    pub boot_id: String,
    /// When this boot first registered (database clock).
    pub started_at: SystemTime,
    /// Its last heartbeat (database clock).
    pub last_seen: SystemTime,
    /// How long ago that was, by the database clock.
    pub seen_ago: Duration,
    /// Live, left or dead.
    pub state: PeerState,
}

/// A peer's liveness, judged by the database clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// Its heartbeat has not expired.
    Live,
    /// It has: the peer stopped or lost the database without leaving.
    Dead,
    /// It stopped cleanly and said so (its stop deregistered it).
    Left,
}

impl PeerState {
    /// `live`, `dead` or `left`.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Live => "live",
            PeerState::Dead => "dead",
            PeerState::Left => "left",
        }
    }
}

/// Every peer that registered (dead and left ones are kept for a day).
pub(crate) async fn peers(client: &Client, sql: &Sql) -> Result<Vec<Peer>, Error> {
    let rows = client.query(&sql.peers, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let live: bool = r.get(7);
            let ago: f64 = r.get(8);
            let left: bool = r.get(9);
            Peer {
                name: r.get(0),
                roles: r.get(1),
                url: r.get(2),
                version: r.get(3),
                boot_id: r.get(4),
                started_at: r.get(5),
                last_seen: r.get(6),
                seen_ago: Duration::try_from_secs_f64(ago.max(0.0)).unwrap_or_default(),
                state: match (live, left) {
                    (true, _) => PeerState::Live,
                    (false, true) => PeerState::Left,
                    (false, false) => PeerState::Dead,
                },
            }
        })
        .collect())
}

/// A singleton's lease row, as `ctl fleet status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The singleton unit.
    pub unit: String,
    /// The peer that holds (or last held) it.
    pub holder: String,
    /// Its fencing term.
    pub term: i64,
    /// Since when this term is held.
    pub since: SystemTime,
    /// Whether it is held now (false: expired or released; anyone may take it).
    pub held: bool,
}

/// Every lease row.
pub(crate) async fn leases(client: &Client, sql: &Sql) -> Result<Vec<Lease>, Error> {
    let rows = client.query(&sql.leases, &[]).await?;
    Ok(rows
        .iter()
        .map(|r| Lease {
            unit: r.get(0),
            holder: r.get(1),
            term: r.get(2),
            since: r.get(3),
            held: r.get(4),
        })
        .collect())
}

/// Deletes long-dead peers and old commands; returns how many of each.
pub(crate) async fn housekeeping(client: &Client, sql: &Sql) -> Result<(i64, i64), Error> {
    let row = client.query_one(&sql.housekeeping, &[]).await?;
    Ok((row.get(0), row.get(1)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn details_are_cut_on_a_character_boundary() {
        assert_eq!(super::cut("héllo", 2), "h");
        assert_eq!(super::cut("héllo", 3), "hé");
        assert_eq!(super::cut("abc", 10), "abc");
    }
}
