//! Realistic raw data, written straight to raw objects as the collector writes them: the input
//! of the ETL benchmark (`clickstream etl generate`).
//!
//! Requests carry 10 events of one session of one user. Users are web visitors (plain JSON
//! bodies, browser user agents, page views, UTM links and referrers from search engines,
//! social networks, newsletters and ads) or app users on Android and iOS (base64 gzip bodies,
//! screen views, device fields). Events include first visits and opens, session starts,
//! engagement, scrolls, clicks, carts and purchases with items, and profile updates with user
//! attributes; about 1% of web traffic is crawlers. The output is deterministic for a seed.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use clickstream_core::{raw_record::RawRecord, wire::encode_gzip_base64};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct RawDataSettings {
    pub app_ids: Vec<String>,
    /// Events to generate (rounded up to whole requests).
    pub events: u64,
    pub events_per_request: usize,
    /// Requests per raw object (one gzip NDJSON file each).
    pub requests_per_object: usize,
    pub seed: u64,
    /// Events are spread over `[end_time_ms - span_ms, end_time_ms]`.
    pub end_time_ms: i64,
    pub span_ms: i64,
}

impl RawDataSettings {
    pub fn new(app_ids: Vec<String>, events: u64) -> RawDataSettings {
        RawDataSettings {
            app_ids,
            events,
            events_per_request: 10,
            requests_per_object: 5_000,
            seed: 1,
            end_time_ms: chrono::Utc::now().timestamp_millis() - 60_000,
            span_ms: 24 * 3_600_000,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RawDataSummary {
    pub objects: u64,
    pub requests: u64,
    pub events: u64,
    pub bytes: u64,
    pub users: u64,
}

const WEB_USER_AGENTS: [&str; 10] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
];
const CRAWLER_USER_AGENTS: [&str; 2] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
];
/// (make, brand, model, OS version, user agent of the app's HTTP client)
const ANDROID_DEVICES: [(&str, &str, &str, &str, &str); 3] = [
    ("Google", "google", "Pixel 8", "14", "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8 Build/UD1A.230803.041)"),
    ("samsung", "samsung", "SM-S918B", "14", "Dalvik/2.1.0 (Linux; U; Android 14; SM-S918B Build/UP1A.231005.007)"),
    ("Xiaomi", "Redmi", "23049RAD8C", "13", "Dalvik/2.1.0 (Linux; U; Android 13; 23049RAD8C Build/TKQ1.221114.001)"),
];
const IOS_DEVICES: [(&str, &str); 2] = [("iPhone15,2", "17.5.1"), ("iPhone16,1", "18.1")];
/// Where web visits come from: (page URL query, page referrer).
const ARRIVALS: [(&str, Option<&str>); 9] = [
    ("", None),
    ("", Some("https://www.google.com/")),
    ("", Some("https://www.bing.com/search?q=running+shoes")),
    ("", Some("https://l.facebook.com/l.php")),
    ("", Some("https://t.co/x7Yk2")),
    ("", Some("https://blog.runnersworld.example/best-shoes")),
    ("?utm_source=newsletter&utm_medium=email&utm_campaign=autumn_sale", None),
    ("?gclid=Cj0KCQiA&utm_campaign=brand", Some("https://www.google.com/")),
    ("?utm_source=facebook&utm_medium=paid_social&utm_campaign=retarget", Some("https://m.facebook.com/")),
];
const PAGES: [(&str, &str); 6] = [("/", "Home"), ("/c/running", "Running shoes"), ("/c/trail", "Trail shoes"), ("/p/1042", "Cloudrunner 2"), ("/p/2210", "Trail Pro GTX"), ("/cart", "Cart")];
const SCREENS: [&str; 5] = ["Home", "Category", "ProductDetail", "Cart", "Checkout"];
const PRODUCTS: [(&str, &str, &str, f64); 4] = [("1042", "Cloudrunner 2", "running", 129.9), ("2210", "Trail Pro GTX", "trail", 159.0), ("3307", "Sprint Socks", "accessories", 12.5), ("4410", "Rain Jacket", "apparel", 89.0)];

#[derive(Clone)]
enum Device {
    Web { user_agent: &'static str },
    Android(usize),
    Ios(usize),
}

#[derive(Clone)]
struct User {
    pseudo_id: String,
    app_id: String,
    device: Device,
    ip: String,
    first_touch_ms: i64,
    sessions: u32,
}

/// A public-looking IPv4 address (no private, loopback or multicast ranges).
fn public_ip(rng: &mut StdRng) -> String {
    loop {
        let first: u8 = rng.random_range(1..=223);
        if [10, 100, 127, 169, 172, 192, 198, 203].contains(&first) {
            continue;
        }
        return format!("{first}.{}.{}.{}", rng.random::<u8>(), rng.random::<u8>(), rng.random_range(1..255u8));
    }
}

fn make_user(index: u64, settings: &RawDataSettings, rng: &mut StdRng) -> User {
    let roll: f64 = rng.random();
    let device = if roll < 0.01 {
        Device::Web { user_agent: CRAWLER_USER_AGENTS.choose(rng).expect("not empty") }
    } else if roll < 0.55 {
        Device::Web { user_agent: WEB_USER_AGENTS.choose(rng).expect("not empty") }
    } else if roll < 0.8 {
        Device::Android(rng.random_range(0..ANDROID_DEVICES.len()))
    } else {
        Device::Ios(rng.random_range(0..IOS_DEVICES.len()))
    };
    User {
        pseudo_id: format!("{:016x}-{index}", rng.random::<u64>()),
        app_id: settings.app_ids.choose(rng).expect("at least one app").clone(),
        device,
        ip: public_ip(rng),
        first_touch_ms: settings.end_time_ms - settings.span_ms - rng.random_range(0..30 * 86_400_000i64),
        sessions: 0,
    }
}

/// The events of one request: part of one session of `user`.
fn session_events(user: &mut User, request: u64, start_ms: i64, count: usize, rng: &mut StdRng) -> Vec<Value> {
    user.sessions += 1;
    let session_number = user.sessions;
    let session_id = format!("{}-{session_number}", &user.pseudo_id[..8]);
    let new_user = session_number == 1;
    let (arrival_query, referrer) = *ARRIVALS.choose(rng).expect("not empty");
    let mut events = Vec::with_capacity(count);
    for index in 0..count {
        let timestamp = start_ms + index as i64 * rng.random_range(800..20_000i64);
        let name = match index {
            0 if new_user => match user.device {
                Device::Web { .. } => "_first_visit",
                _ => "_first_open",
            },
            0 => "_session_start",
            _ => {
                let pick: f64 = rng.random();
                match (pick, &user.device) {
                    (p, Device::Web { .. }) if p < 0.4 => "_page_view",
                    (p, _) if p < 0.4 => "_screen_view",
                    (p, _) if p < 0.55 => "_user_engagement",
                    (p, Device::Web { .. }) if p < 0.65 => "_scroll",
                    (p, _) if p < 0.8 => "product_click",
                    (p, _) if p < 0.9 => "add_to_cart",
                    (p, _) if p < 0.93 => "purchase",
                    (p, _) if p < 0.95 => "_profile_set",
                    _ => "search",
                }
            }
        };
        let mut event = json!({
            "event_type": name,
            "event_id": format!("{:016x}-{request}-{index}", rng.random::<u64>()),
            "app_id": user.app_id,
            "timestamp": timestamp,
            "unique_id": user.pseudo_id,
            "device_id": format!("device-{}", &user.pseudo_id[..12]),
            "sdk_name": "aws-solution-clickstream-sdk",
            "zone_offset": 3_600_000,
            "system_language": "en",
            "locale": "en_US",
            "hashCode": format!("{:08x}", rng.random::<u32>()),
            "user": {
                "_user_id": {"value": format!("member-{}", &user.pseudo_id[..10]), "set_timestamp": user.first_touch_ms},
                "_user_first_touch_timestamp": {"value": user.first_touch_ms, "set_timestamp": user.first_touch_ms},
            },
        });
        let mut attributes = json!({
            "_session_id": session_id,
            "_session_start_timestamp": start_ms,
            "_session_duration": timestamp - start_ms,
            "_session_number": session_number,
            "_engagement_time_msec": rng.random_range(100..30_000),
        });
        match &user.device {
            Device::Web { .. } => {
                let (path, title) = *PAGES.choose(rng).expect("not empty");
                let object = event.as_object_mut().expect("an object");
                object.insert("platform".into(), "Web".into());
                object.insert("sdk_version".into(), "0.12.6".into());
                object.insert("host_name".into(), "shop.example.com".into());
                object.insert("app_title".into(), "Shoe Shop".into());
                object.insert("screen_width".into(), 1920.into());
                object.insert("screen_height".into(), 1080.into());
                object.insert("viewport_width".into(), 1600.into());
                object.insert("viewport_height".into(), 900.into());
                attributes["_page_url"] = format!("https://shop.example.com{path}{}", if index == 0 { arrival_query } else { "" }).into();
                attributes["_page_title"] = title.into();
                if let Some(referrer) = referrer {
                    attributes["_latest_referrer"] = referrer.into();
                    attributes["_latest_referrer_host"] = referrer.split('/').nth(2).unwrap_or_default().into();
                    if index == 0 {
                        attributes["_page_referrer"] = referrer.into();
                    }
                }
                if index > 0 {
                    attributes["_page_referrer"] = "https://shop.example.com/".into();
                }
            }
            Device::Android(model) | Device::Ios(model) => {
                let android = matches!(user.device, Device::Android(_));
                let object = event.as_object_mut().expect("an object");
                if android {
                    let (make, brand, model, os_version, _) = ANDROID_DEVICES[*model];
                    object.insert("platform".into(), "Android".into());
                    object.insert("make".into(), make.into());
                    object.insert("brand".into(), brand.into());
                    object.insert("model".into(), model.into());
                    object.insert("os_version".into(), os_version.into());
                    object.insert("carrier".into(), "T-Mobile".into());
                    object.insert("sdk_version".into(), "0.14.0".into());
                } else {
                    let (model, os_version) = IOS_DEVICES[*model];
                    object.insert("platform".into(), "iOS".into());
                    object.insert("make".into(), "apple".into());
                    object.insert("brand".into(), "apple".into());
                    object.insert("model".into(), model.into());
                    object.insert("os_version".into(), os_version.into());
                    object.insert("sdk_version".into(), "0.13.1".into());
                }
                object.insert("network_type".into(), if rng.random_bool(0.7) { "WIFI" } else { "Mobile" }.into());
                object.insert("screen_width".into(), 1080.into());
                object.insert("screen_height".into(), 2400.into());
                object.insert("app_version".into(), "3.4.1".into());
                object.insert("app_package_name".into(), "com.example.shoeshop".into());
                object.insert("app_title".into(), "Shoe Shop".into());
                let screen = *SCREENS.choose(rng).expect("not empty");
                attributes["_screen_name"] = screen.into();
                attributes["_screen_id"] = format!("{screen}Activity").into();
                attributes["_previous_screen_name"] = (*SCREENS.choose(rng).expect("not empty")).into();
                attributes["_previous_timestamp"] = (timestamp - 3_000).into();
                if index == 0 {
                    attributes["_is_first_time"] = new_user.into();
                }
            }
        }
        if matches!(name, "product_click" | "add_to_cart" | "purchase") {
            let (id, product, category, price) = *PRODUCTS.choose(rng).expect("not empty");
            attributes["product_id"] = id.into();
            attributes["category"] = category.into();
            event["items"] = json!([{"id": id, "name": product, "category": category, "price": price, "quantity": rng.random_range(1..3), "brand": "Stride", "currency": "USD"}]);
            if name == "purchase" {
                event["event_value"] = (price * 1.08).into();
                event["event_value_currency"] = "USD".into();
            }
        }
        if name == "search" {
            attributes["_search_key"] = "q".into();
            attributes["_search_term"] = ["trail shoes", "socks", "gore-tex"].choose(rng).copied().into();
        }
        if name == "_profile_set" {
            event["user"]["_user_name"] = json!({"value": format!("Runner {}", &user.pseudo_id[..6]), "set_timestamp": timestamp});
            event["user"]["_user_age"] = json!({"value": rng.random_range(18..70), "set_timestamp": timestamp});
            let membership = ["bronze", "silver", "gold"].choose(rng).copied();
            event["user"]["membership"] = json!({"value": membership, "set_timestamp": timestamp});
        }
        attributes["experiment"] = ["control", "variant_a"].choose(rng).copied().into();
        event["attributes"] = attributes;
        events.push(event);
    }
    events
}

/// One raw record (one request), as the collector writes it.
fn raw_record(user: &User, events: Vec<Value>, request: u64, upload_ms: i64, rng: &mut StdRng) -> RawRecord {
    let body = Value::Array(events).to_string();
    let (platform, user_agent, gzip) = match &user.device {
        Device::Web { user_agent } => ("Web", *user_agent, false),
        Device::Android(model) => ("Android", ANDROID_DEVICES[*model].4, true),
        Device::Ios(_) => ("iOS", "ShoeShop/3.4.1 CFNetwork/1490.0.4 Darwin/23.2.0", true),
    };
    let ingest_ms = upload_ms + rng.random_range(20..400i64);
    let compression = if gzip { "&compression=gzip" } else { "" };
    let uri = format!("/collect?platform={platform}&appId={}&event_bundle_sequence_id={request}&upload_timestamp={upload_ms}&hashCode={:08x}{compression}", user.app_id, rng.random::<u32>());
    let date = chrono::DateTime::from_timestamp_millis(ingest_ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    RawRecord {
        date: Some(date.clone()),
        uri: Some(uri),
        ua: Some(user_agent.to_string()),
        ip: Some(user.ip.clone()),
        client_timestamp: Some(upload_ms),
        rid: Some(format!("{:032x}", rng.random::<u128>())),
        method: Some("POST".into()),
        data: Some(if gzip { encode_gzip_base64(&body) } else { body }),
        ingest_time: Some(ingest_ms),
        server_ingest_time: Some(ingest_ms),
        app_id: Some(user.app_id.clone()),
        platform: Some(platform.into()),
        compression: gzip.then(|| "gzip".to_string()),
        path: Some("/collect".into()),
        source_type: Some("http".into()),
        timestamp: Some(date),
    }
}

/// Writes the raw objects into `directory` (`raw-NNNNN.gz`); `progress` gets the events so far.
pub fn generate_raw_objects(settings: &RawDataSettings, directory: &Path, mut progress: impl FnMut(u64)) -> std::io::Result<RawDataSummary> {
    std::fs::create_dir_all(directory)?;
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let requests = settings.events.div_ceil(settings.events_per_request as u64);
    let user_count = (settings.events / 50).max(100);
    let mut users: Vec<User> = (0..user_count).map(|index| make_user(index, settings, &mut rng)).collect();
    let mut summary = RawDataSummary { users: user_count, ..RawDataSummary::default() };
    let mut writer: Option<(PathBuf, flate2::write::GzEncoder<std::fs::File>)> = None;
    for request in 0..requests {
        if request % settings.requests_per_object as u64 == 0 {
            if let Some((path, encoder)) = writer.take() {
                encoder.finish()?;
                summary.bytes += std::fs::metadata(path)?.len();
            }
            let path = directory.join(format!("raw-{:05}.gz", summary.objects));
            let file = std::fs::File::create(&path)?;
            writer = Some((path, flate2::write::GzEncoder::new(file, flate2::Compression::fast())));
            summary.objects += 1;
        }
        // Some users come back far more often than others.
        let index = ((rng.random::<f64>().powi(2)) * user_count as f64) as usize;
        let user = &mut users[index.min(user_count as usize - 1)];
        let start_ms = settings.end_time_ms - settings.span_ms + (request as i64 * settings.span_ms) / requests.max(1) as i64;
        let events = session_events(user, request, start_ms, settings.events_per_request, &mut rng);
        let upload_ms = start_ms + settings.events_per_request as i64 * 20_000;
        let record = raw_record(user, events, request, upload_ms, &mut rng);
        let (_, encoder) = writer.as_mut().expect("opened above");
        serde_json::to_writer(&mut *encoder, &record)?;
        encoder.write_all(b"\n")?;
        summary.requests += 1;
        summary.events += settings.events_per_request as u64;
        if request % 1000 == 0 {
            progress(summary.events);
        }
    }
    if let Some((path, encoder)) = writer.take() {
        encoder.finish()?;
        summary.bytes += std::fs::metadata(path)?.len();
    }
    progress(summary.events);
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_complete() {
        let directory = tempfile::tempdir().unwrap();
        let mut settings = RawDataSettings::new(vec!["shop".into()], 2_000);
        settings.requests_per_object = 50;
        settings.end_time_ms = 1_800_000_000_000;
        let summary = generate_raw_objects(&settings, directory.path(), |_| {}).unwrap();
        assert_eq!((summary.requests, summary.events, summary.objects), (200, 2_000, 4));
        let first = std::fs::read(directory.path().join("raw-00000.gz")).unwrap();
        let again = tempfile::tempdir().unwrap();
        generate_raw_objects(&settings, again.path(), |_| {}).unwrap();
        assert_eq!(first, std::fs::read(again.path().join("raw-00000.gz")).unwrap(), "the same seed gives the same data");
    }
}
