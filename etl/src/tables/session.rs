//! `session`: one row per session, with the traffic source the session is attributed to.

use crate::{
    sessions::SessionRow,
    tables::{BatchContext, TextMapWriter, define_table},
};

pub const TABLE_NAME: &str = "session";

const SHORT: usize = 255;
const MEDIUM: usize = 2048;

fn process_info(session: &SessionRow, context: &BatchContext, map: &mut TextMapWriter<'_>) -> bool {
    for (key, value) in &session.event_process_info {
        map.entry(key, Some(value));
    }
    map.entry("process_job_id", Some(&context.process_job_id));
    map.entry("process_time", Some(&context.process_time));
    true
}

define_table!(SessionRow, BatchContext {
    event_timestamp: timestamp = |session, _| Some(session.event_time_msec * 1000),
    user_pseudo_id: text(SHORT) = |session, _| session.user_pseudo_id.as_deref(),
    session_id: text(SHORT) = |session, _| Some(&session.session_id),
    user_id: text(SHORT) = |session, _| session.user_id.as_deref(),
    session_number: long = |session, _| session.session_number,
    session_start_time_msec: long = |session, _| session.session_start_time_msec,
    session_source: text(SHORT) = |session, _| session.traffic.source.as_deref(),
    session_medium: text(SHORT) = |session, _| session.traffic.medium.as_deref(),
    session_campaign: text(SHORT) = |session, _| session.traffic.campaign.as_deref(),
    session_content: text(MEDIUM) = |session, _| session.traffic.content.as_deref(),
    session_term: text(MEDIUM) = |session, _| session.traffic.term.as_deref(),
    session_campaign_id: text(SHORT) = |session, _| session.traffic.campaign_id.as_deref(),
    session_clid_platform: text(SHORT) = |session, _| session.traffic.clid_platform.as_deref(),
    session_clid: text(MEDIUM) = |session, _| session.traffic.clid.as_deref(),
    session_channel_group: text(SHORT) = |session, _| session.traffic.channel_group.as_deref(),
    session_source_category: text(SHORT) = |session, _| session.traffic.category.as_deref(),
    process_info: text_map = |session, context, map| process_info(session, context, map),
    app_id: text(SHORT) = |session, _| Some(&session.app_id),
    created_time: timestamp = |_, context| Some(context.created_time_micros),
});
