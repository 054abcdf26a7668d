//! Runs custom ETL plugins: WebAssembly components that implement `plugins/wit/plugin.wit`.
//!
//! The sandbox is built here, in one place:
//! - **no ambient I/O**: the plugin is linked against WASI with nothing granted (no files, no
//!   sockets, no environment, no arguments); stdout is discarded and stderr is kept, bounded,
//!   only to explain a failure (a Rust plugin's panic message goes there);
//! - **fuel**: every call gets a budget of WebAssembly instructions in proportion to its batch,
//!   so a plugin that loops forever fails its batch instead of stalling the worker;
//! - **memory**: the plugin's linear memory is capped, and growing past the cap traps.
//!
//! A job calls a plugin batch after batch in one instance ([`PluginSession`]); after any
//! failure the instance is dropped and the next batch gets a new one, so a plugin that trapped
//! on one batch starts clean on the next. Components are compiled once per process and kept
//! by the SHA-256 of their bytes ([`PluginRuntime`]).
//!
//! An enricher gets its batch as columns ([`EventBatch`]) and answers columns
//! ([`ParameterColumn`]), checked here before anyone reads them ([`columns`]). The ETL builds
//! the columns from its rows and sets the answer on them (`clickstream_etl::enrich::plugin`);
//! this crate knows nothing of the ETL's tables.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use sha2::{Digest, Sha256};
use wasmtime::{
    Engine, Store, StoreLimits, StoreLimitsBuilder, Trap,
    component::{Component, Linker, ResourceTable},
};
use wasmtime_wasi::{
    WasiCtx, WasiCtxView, WasiView,
    p2::pipe::{MemoryOutputPipe, SinkOutputStream},
};

mod bindings {
    pub mod enricher {
        wasmtime::component::bindgen!({ path: "../wit", world: "enricher" });
    }
    pub mod transformer {
        wasmtime::component::bindgen!({ path: "../wit", world: "transformer" });
    }
}

pub use bindings::enricher::clickstream::plugin::types::{Column, ColumnValues, EventBatch, EventField, ParameterColumn, ParameterValues, RawRequest, TextColumn, Texts};

pub mod columns;
pub use columns::AnsweredValue;

/// The fields an enricher declared it reads (its `reads` export): the host sends only their
/// columns, since copying the others into the sandbox would be wasted work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadFields {
    // Indexed by the field's position in the WIT enum.
    read: [bool; ReadFields::FIELD_COUNT],
}

impl ReadFields {
    const FIELD_COUNT: usize = EventField::CustomParameters as usize + 1;

    pub fn none() -> ReadFields {
        ReadFields { read: [false; ReadFields::FIELD_COUNT] }
    }

    pub fn of(fields: &[EventField]) -> ReadFields {
        let mut read_fields = ReadFields::none();
        for field in fields {
            read_fields.read[*field as usize] = true;
        }
        read_fields
    }

    pub fn contains(&self, field: EventField) -> bool {
        self.read[field as usize]
    }

    /// The declared fields in the order of the WIT enum, which is the order of a batch's
    /// columns.
    pub fn fields(&self) -> impl Iterator<Item = EventField> + '_ {
        ALL_EVENT_FIELDS.into_iter().filter(|field| self.contains(*field))
    }
}

/// Every field, in the order of the WIT enum.
pub const ALL_EVENT_FIELDS: [EventField; ReadFields::FIELD_COUNT] = [
    EventField::EventId,
    EventField::EventName,
    EventField::AppId,
    EventField::Platform,
    EventField::EventTimeMsec,
    EventField::UserPseudoId,
    EventField::UserId,
    EventField::SessionId,
    EventField::PageUrl,
    EventField::PageReferrer,
    EventField::PageTitle,
    EventField::ScreenName,
    EventField::UserAgent,
    EventField::ClientIp,
    EventField::GeoCountry,
    EventField::CustomParameters,
];

/// The WIT interface, for documentation and for building plugins against the same text.
pub const WIT: &str = include_str!("../../wit/plugin.wit");

/// What a plugin may use per call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Fuel (about one WebAssembly instruction each) per event or request in the batch.
    pub fuel_per_item: u64,
    /// Fuel every call gets on top, for the plugin's start-up and its answer.
    pub fuel_per_call: u64,
    /// The most linear memory the plugin may grow to, in bytes.
    pub memory_bytes: usize,
}

impl Default for PluginLimits {
    fn default() -> PluginLimits {
        // A plugin doing real work per event (parsing a URL, a few map look-ups) uses tens of
        // thousands of instructions; a million per event is ample and still stops a runaway
        // loop within a second or two of a batch.
        PluginLimits { fuel_per_item: 1_000_000, fuel_per_call: 100_000_000, memory_bytes: 256 * 1024 * 1024 }
    }
}

/// Why a plugin could not be loaded or failed a batch.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The bytes are not a WebAssembly component (a core module, or not WebAssembly at all).
    /// Retrying does not help: build the plugin as a component (see docs/plugins.md).
    #[error("not a WebAssembly component: {0}")]
    NotAComponent(String),
    /// The component does not export the world its kind needs, or imports more than the
    /// sandbox gives. Retrying does not help: rebuild it against plugins/wit/plugin.wit.
    #[error("the component does not fit the `{world}` world of clickstream:plugin@0.3.0: {reason}")]
    WrongInterface { world: &'static str, reason: String },
    /// The plugin trapped (a Rust panic, an unreachable, a bad memory access). The batch is
    /// quarantined; retrying the same batch fails the same way.
    #[error("the plugin trapped: {reason}{}", stderr_suffix(.stderr))]
    Trapped { reason: String, stderr: String },
    /// The plugin used its whole fuel budget for the batch (a loop that does not end, or far
    /// more work per event than a plugin should do).
    #[error("the plugin ran out of fuel ({fuel} units for {items} items)")]
    OutOfFuel { fuel: u64, items: usize },
    /// The plugin tried to grow its memory past the limit.
    #[error("the plugin exceeded its memory limit of {limit_bytes} bytes")]
    OutOfMemory { limit_bytes: usize },
    /// The plugin answered `err(message)` for the whole batch.
    #[error("the plugin refused the batch: {0}")]
    Refused(String),
    /// The plugin's answer does not fit the batch (values that do not match their events, an
    /// event past the batch, text ends outside their buffer). Retrying does not help.
    #[error("the plugin returned a malformed answer: {0}")]
    Malformed(String),
    /// The batch is too large to hand to a plugin at all (its texts exceed what 32-bit
    /// WebAssembly can address). Retrying the same batch does not help.
    #[error("the batch is too large for a plugin: {0}")]
    BatchTooLarge(String),
    /// The sandbox itself could not be set up (an internal error; a retry may help).
    #[error("cannot set up the plugin sandbox: {0}")]
    Sandbox(String),
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() { String::new() } else { format!("; its stderr: {}", stderr.trim()) }
}

/// Which world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginWorld {
    Enricher,
    Transformer,
}

impl PluginWorld {
    pub fn name(self) -> &'static str {
        match self {
            PluginWorld::Enricher => "enricher",
            PluginWorld::Transformer => "transformer",
        }
    }
}

/// The state each call's store holds: the empty WASI context and the memory limiter.
struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// How much a plugin may write to stderr in one session (kept to explain a failure); writing
/// more traps, which fails the batch and starts a new session.
const STDERR_BYTES: usize = 1024 * 1024;

/// Compiles and runs plugins; one per process, shared by every job.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<Sandbox>,
    limits: PluginLimits,
    compiled: Mutex<HashMap<(String, PluginWorld), Arc<LoadedPlugin>>>,
}

/// A compiled plugin, ready to be called.
pub struct LoadedPlugin {
    /// SHA-256 of the component's bytes, hex.
    pub sha256: String,
    pub world: PluginWorld,
    instance: Instance,
    engine: Engine,
    limits: PluginLimits,
}

enum Instance {
    Enricher(bindings::enricher::EnricherPre<Sandbox>),
    Transformer(bindings::transformer::TransformerPre<Sandbox>),
}

/// SHA-256 of a component's bytes, hex: the name it is stored and cached under.
pub fn module_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PluginRuntime {
    pub fn new(limits: PluginLimits) -> Result<PluginRuntime, PluginError> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).map_err(|error| PluginError::Sandbox(format!("{error:#}")))?;
        let mut linker = Linker::new(&engine);
        // WASI is linked so that components built by standard toolchains (which import its
        // interfaces for their runtime) instantiate; what they may reach through it is
        // decided by the empty context each call gets.
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|error| PluginError::Sandbox(format!("{error:#}")))?;
        Ok(PluginRuntime { engine, linker, limits, compiled: Mutex::new(HashMap::new()) })
    }

    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// Compiles a component and checks that it implements `world`, or returns the compiled
    /// one of the same bytes. Compiling takes a moment (Cranelift); the check is what the
    /// control plane runs on upload, so a bad module is refused there rather than at the
    /// next ETL run.
    pub fn load(&self, bytes: &[u8], world: PluginWorld) -> Result<Arc<LoadedPlugin>, PluginError> {
        let sha256 = module_sha256(bytes);
        let cache_key = (sha256.clone(), world);
        if let Some(loaded) = self.compiled.lock().expect("the plugin cache lock is not poisoned").get(&cache_key) {
            return Ok(loaded.clone());
        }
        if is_core_module(bytes) {
            return Err(PluginError::NotAComponent("this is a core WebAssembly module; plugins are components (build for wasm32-wasip2, or wrap the module with `wasm-tools component new`)".into()));
        }
        let component = Component::new(&self.engine, bytes).map_err(|error| PluginError::NotAComponent(format!("{error:#}")))?;
        let wrong_interface = |error: wasmtime::Error| PluginError::WrongInterface { world: world.name(), reason: format!("{error:#}") };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(wrong_interface)?;
        let instance = match world {
            PluginWorld::Enricher => Instance::Enricher(bindings::enricher::EnricherPre::new(instance_pre).map_err(wrong_interface)?),
            PluginWorld::Transformer => Instance::Transformer(bindings::transformer::TransformerPre::new(instance_pre).map_err(wrong_interface)?),
        };
        let loaded = Arc::new(LoadedPlugin { sha256, world, instance, engine: self.engine.clone(), limits: self.limits });
        self.compiled.lock().expect("the plugin cache lock is not poisoned").insert(cache_key, loaded.clone());
        Ok(loaded)
    }
}

/// A core module starts with the magic and version 1; a component with the magic and a
/// different version/layer word. Telling them apart first gives a useful message.
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[0..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

impl LoadedPlugin {
    /// An instance to call batch after batch (see [`PluginSession`]).
    pub fn session(self: &Arc<Self>) -> Result<PluginSession, PluginError> {
        let stderr = MemoryOutputPipe::new(STDERR_BYTES);
        let wasi = WasiCtx::builder().stdout(SinkOutputStream).stderr(stderr.clone()).allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).build();
        let limits = StoreLimitsBuilder::new().memory_size(self.limits.memory_bytes).trap_on_grow_failure(true).build();
        let mut store = Store::new(&self.engine, Sandbox { wasi, table: ResourceTable::new(), limits });
        store.limiter(|sandbox| &mut sandbox.limits);
        // Instantiating runs the component's start-up code, which also burns fuel.
        store.set_fuel(self.limits.fuel_per_call).map_err(|error| PluginError::Sandbox(format!("{error:#}")))?;
        let instance = match &self.instance {
            Instance::Enricher(pre) => pre.instantiate(&mut store).map(SessionInstance::Enricher),
            Instance::Transformer(pre) => pre.instantiate(&mut store).map(SessionInstance::Transformer),
        };
        let start_up = CallBudget { fuel: self.limits.fuel_per_call, items: 0, memory_bytes: self.limits.memory_bytes, stderr_before: 0 };
        let instance = instance.map_err(|error| start_up.failure(error, &stderr))?;
        Ok(PluginSession { plugin: self.clone(), store, stderr, instance })
    }

    /// Runs the enricher over one batch in an instance of its own (see
    /// [`PluginSession::enrich`]).
    pub fn enrich(self: &Arc<Self>, config: &str, batch: &EventBatch) -> Result<Vec<ParameterColumn>, PluginError> {
        self.session()?.enrich(config, batch)
    }

    /// Runs the transformer over one batch in an instance of its own: per request, its events
    /// as a JSON array text, or the reason that request cannot be transformed.
    pub fn transform(self: &Arc<Self>, config: &str, requests: &[RawRequest]) -> Result<Vec<Result<String, String>>, PluginError> {
        self.session()?.transform(config, requests)
    }
}

/// One instance of a plugin, called batch after batch by one job. Reusing it saves setting
/// up the plugin's memory for every batch (with a fresh instance per batch, a quarter of the
/// time went to page faults).
/// After any failure the session must be dropped: the next batch gets a new one, so a trap
/// never leaves a broken instance behind. Each call gets its own fuel budget; the memory limit
/// holds for the session's life, so a plugin that leaks fails a batch and starts over.
pub struct PluginSession {
    plugin: Arc<LoadedPlugin>,
    store: Store<Sandbox>,
    stderr: MemoryOutputPipe,
    instance: SessionInstance,
}

enum SessionInstance {
    Enricher(bindings::enricher::Enricher),
    Transformer(bindings::transformer::Transformer),
}

impl PluginSession {
    /// The fields the enricher reads with this configuration (its `reads` export).
    pub fn reads(&mut self, config: &str) -> Result<ReadFields, PluginError> {
        let budget = self.prepare_call(0)?;
        let SessionInstance::Enricher(plugin) = &self.instance else {
            return Err(PluginError::WrongInterface { world: "enricher", reason: "this plugin is a transformer".into() });
        };
        let fields = plugin.call_reads(&mut self.store, config).map_err(|error| budget.failure(error, &self.stderr))?;
        Ok(ReadFields::of(&fields))
    }

    /// Runs the enricher over one batch: the parameters it sets, one column each, checked to
    /// fit the batch (see [`columns::check_answer`]). The batch holds the columns of the
    /// fields the enricher reads (see [`PluginSession::reads`]).
    pub fn enrich(&mut self, config: &str, batch: &EventBatch) -> Result<Vec<ParameterColumn>, PluginError> {
        batch.check_fits_a_plugin()?;
        let size = batch.size as usize;
        let budget = self.prepare_call(size)?;
        let SessionInstance::Enricher(plugin) = &self.instance else {
            return Err(PluginError::WrongInterface { world: "enricher", reason: "this plugin is a transformer".into() });
        };
        let answer = plugin.call_enrich(&mut self.store, config, batch).map_err(|error| budget.failure(error, &self.stderr))?;
        let columns = answer.map_err(PluginError::Refused)?;
        columns::check_answer(&columns, size)?;
        Ok(columns)
    }

    /// Runs the transformer over one batch of requests: per request, its events as a JSON
    /// array text, or the reason that request cannot be transformed.
    pub fn transform(&mut self, config: &str, requests: &[RawRequest]) -> Result<Vec<Result<String, String>>, PluginError> {
        let budget = self.prepare_call(requests.len())?;
        let SessionInstance::Transformer(plugin) = &self.instance else {
            return Err(PluginError::WrongInterface { world: "transformer", reason: "this plugin is an enricher".into() });
        };
        // The transformer's bindings have their own copy of the shared types.
        let requests: Vec<bindings::transformer::clickstream::plugin::types::RawRequest> = requests
            .iter()
            .map(|request| bindings::transformer::clickstream::plugin::types::RawRequest {
                app_id: request.app_id.clone(),
                body: request.body.clone(),
                user_agent: request.user_agent.clone(),
                client_ip: request.client_ip.clone(),
                ingest_time_msec: request.ingest_time_msec,
            })
            .collect();
        let answer = plugin.call_transform(&mut self.store, config, &requests).map_err(|error| budget.failure(error, &self.stderr))?;
        let transformed = answer.map_err(PluginError::Refused)?;
        if transformed.len() != requests.len() {
            return Err(PluginError::Malformed(format!("{} answers for {} requests", transformed.len(), requests.len())));
        }
        Ok(transformed)
    }

    /// Gives the store the call's fuel and notes where the call's stderr starts.
    fn prepare_call(&mut self, items: usize) -> Result<CallBudget, PluginError> {
        let limits = self.plugin.limits;
        let fuel = limits.fuel_per_call.saturating_add(limits.fuel_per_item.saturating_mul(items as u64));
        self.store.set_fuel(fuel).map_err(|error| PluginError::Sandbox(format!("{error:#}")))?;
        Ok(CallBudget { fuel, items, memory_bytes: limits.memory_bytes, stderr_before: self.stderr.contents().len() })
    }
}

/// What one call (or an instantiation) was given, to name what went wrong inside it.
struct CallBudget {
    fuel: u64,
    items: usize,
    memory_bytes: usize,
    /// How much stderr the session had before the call: only what the call wrote explains it.
    stderr_before: usize,
}

impl CallBudget {
    fn failure(&self, error: wasmtime::Error, stderr: &MemoryOutputPipe) -> PluginError {
        if let Some(Trap::OutOfFuel) = error.downcast_ref::<Trap>() {
            return PluginError::OutOfFuel { fuel: self.fuel, items: self.items };
        }
        let reason = format!("{error:#}");
        if reason.contains("forcing trap when growing memory") || reason.contains("forcing a memory growth failure") {
            return PluginError::OutOfMemory { limit_bytes: self.memory_bytes };
        }
        let written = stderr.contents();
        let stderr = String::from_utf8_lossy(written.get(self.stderr_before..).unwrap_or_default()).into_owned();
        PluginError::Trapped { reason, stderr }
    }
}

pub mod build;
