//! The connection's jobs: open it (schema, LISTEN, prepared statements), drive it
//! (notifications become [`Event`]s), and pull commands; each statement bounded by
//! the statement timeout, its errors scrubbed of the password.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_postgres::{AsyncMessage, Client};
use tracing::warn;

use crate::commands::Command;
use crate::db::{self, Prepared};
use crate::runner::{AbortOnDrop, Ctx, Event, Live};
use crate::schema;

/// A statement under the statement timeout, its error scrubbed.
pub(crate) async fn bounded<T>(
    ctx: &Ctx,
    work: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, String> {
    match timeout(ctx.settings.statement_timeout, work).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ctx.scrub(&e)),
        Err(_) => Err(format!(
            "no answer within {:?}",
            ctx.settings.statement_timeout
        )),
    }
}

/// Opens the connection, brings the schema up, LISTENs and prepares.
pub(crate) async fn connect(
    ctx: &Arc<Ctx>,
    gen: u64,
    tx: &mpsc::UnboundedSender<Event>,
) -> Result<(Live, schema::Ensured), tokio_postgres::Error> {
    let (mut client, connection) = ctx.target.config.connect(ctx.tls.clone()).await?;
    // Dropped (aborting the driver, closing the socket) if anything below fails or
    // the budget runs out.
    let driver = AbortOnDrop(tokio::spawn(drive(
        connection,
        ctx.clone(),
        gen,
        tx.clone(),
    )));
    let ensured = schema::ensure(&mut client, &ctx.settings.schema).await?;
    client.batch_execute(&ctx.sql.listen).await?;
    let prepared = Prepared::new(&client, &ctx.sql).await?;
    let live = Live {
        client: Arc::new(client),
        prepared: Arc::new(prepared),
        _driver: driver,
    };
    Ok((live, ensured))
}

/// Drives the connection, forwarding notifications, until it ends.
async fn drive<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    ctx: Arc<Ctx>,
    gen: u64,
    tx: mpsc::UnboundedSender<Event>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = std::future::poll_fn(|cx| connection.poll_message(cx)).await;
        let ev = match message {
            Some(Ok(AsyncMessage::Notification(n))) => Event::Notify {
                gen,
                payload: n.payload().to_owned(),
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) => Event::Closed {
                gen,
                error: Some(ctx.scrub(&e)),
            },
            None => Event::Closed { gen, error: None },
        };
        let closed = matches!(ev, Event::Closed { .. });
        if tx.send(ev).is_err() || closed {
            return;
        }
    }
}

/// The pull job: marks earlier boots' unfinished claims interrupted (first pull of a
/// connection), refuses rows bosun does not run, claims the rest.
pub(crate) async fn pull(
    client: &Client,
    prepared: &Prepared,
    ctx: &Ctx,
    first: bool,
) -> Result<(Vec<Command>, bool), tokio_postgres::Error> {
    if first {
        let n = db::interrupted(client, &ctx.sql, &ctx.me).await?;
        if n > 0 {
            warn!(target: "bosun_fleet", "{n} fleet command(s) of an earlier boot of {} were interrupted: marked failed, not run again", ctx.me.name);
        }
    }
    let rows = db::pull(client, prepared, &ctx.me).await?;
    let more = rows.len() as i64 >= db::PULL_LIMIT;
    let mut out = Vec::new();
    for row in rows {
        match row {
            db::Pulled::Invalid { id, why } => {
                warn!(target: "bosun_fleet", "fleet command {id} refused: {why}");
                db::reject(client, &ctx.sql, &ctx.me, id, &why).await?;
            }
            db::Pulled::Valid {
                command,
                claimed: true,
            } => out.push(command),
            db::Pulled::Valid {
                command,
                claimed: false,
            } => {
                if db::claim(client, &ctx.sql, &ctx.me, command.id).await? {
                    out.push(command);
                }
            }
        }
    }
    Ok((out, more))
}
