//! msh's own log lines (`-v`) in fleet mode, labelled with their host as its output lines
//! are (`LABEL: ...`): hosts run side by side, so unlabelled lines could not be told apart.
//! Each host task runs in a `host` span whose `label` field `HostLabels` keeps with the
//! span; `Labelled` prints it in front of every event inside that span.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

const HOST_SPAN: &str = "host";

/// The span a host's task runs in. At ERROR level so that it is enabled whatever the
/// verbosity: a span's level only decides whether it exists, and every line logged (warnings
/// too) must carry its host.
pub(super) fn host_span(label: &str) -> tracing::Span {
    tracing::error_span!(HOST_SPAN, label)
}

/// A host span's label, kept in the span's extensions.
struct HostLabel(String);

/// Keeps the `label` of each new `host` span with it, for `Labelled`.
pub(in crate::msh) struct HostLabels;

impl<S> Layer<S> for HostLabels
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != HOST_SPAN {
            return;
        }
        let mut label = LabelField(None);
        attrs.record(&mut label);
        if let (Some(label), Some(span)) = (label.0, ctx.span(id)) {
            span.extensions_mut().insert(HostLabel(label));
        }
    }
}

struct LabelField(Option<String>);

impl Visit for LabelField {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "label" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "label" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

/// `LABEL: LEVEL message`: the host's label (from the innermost `host` span around the
/// event), then the level coloured on a terminal as the default format does, then the
/// message and fields. Events outside any host span print as the default format would.
pub(in crate::msh) struct Labelled;

impl<S, N> FormatEvent<S, N> for Labelled
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let label = ctx.event_scope().and_then(|scope| {
            scope
                .from_root()
                .filter_map(|span| span.extensions().get::<HostLabel>().map(|l| l.0.clone()))
                .last()
        });
        let level = *event.metadata().level();
        // Padded to five as the default format does, except after a label: `db1: INFO ...`
        // reads as the host's line, like its output lines.
        let level_text = match &label {
            Some(label) => {
                write!(writer, "{}: ", super::super::sanitize::for_terminal(label))?;
                level.to_string()
            }
            None => format!("{level:>5}"),
        };
        if writer.has_ansi_escapes() {
            write!(writer, "\x1b[{}m{level_text}\x1b[0m ", level_colour(level))?;
        } else {
            write!(writer, "{level_text} ")?;
        }
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The colours tracing-subscriber's default format gives each level.
fn level_colour(level: Level) -> &'static str {
    match level {
        Level::TRACE => "35",
        Level::DEBUG => "34",
        Level::INFO => "32",
        Level::WARN => "33",
        Level::ERROR => "31",
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// A writer that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_inside_a_host_span_carry_its_label() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(HostLabels).with(
            tracing_subscriber::fmt::layer()
                .event_format(Labelled)
                .with_ansi(false)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("before");
            host_span("db1").in_scope(|| {
                tracing::info!("connected to db1 port 22");
                tracing::info_span!("inner").in_scope(|| tracing::warn!(n = 3, "inside"));
            });
            host_span("web\x1b[2J").in_scope(|| tracing::debug!("escaped"));
        });
        let text = String::from_utf8(buf.0.lock().map(|v| v.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert_eq!(
            text,
            " INFO before\n\
             db1: INFO connected to db1 port 22\n\
             db1: WARN inside n=3\n\
             web\\x1b[2J: DEBUG escaped\n"
        );
    }
}
