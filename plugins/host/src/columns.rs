//! The column types of an enricher's batch and answer (`texts`, `text-column`, `event-batch`,
//! `parameter-column` in plugins/wit/plugin.wit): building them on the host, and checking a
//! plugin's answer before anything reads it.
//!
//! A plugin's answer comes out of the sandbox untrusted. [`check_answer`] refuses one whose
//! lengths, positions or text ends do not fit the batch, so that [`ParameterColumn::entries`]
//! can then hand out its values without failing halfway through a batch.

use crate::{Column, ColumnValues, EventBatch, ParameterColumn, ParameterValues, PluginError, TextColumn, Texts};

impl Texts {
    pub fn new() -> Texts {
        Texts { bytes: String::new(), ends: Vec::new() }
    }

    /// Appends a text. Its end is kept as a `u32`, as the plugin's 32-bit memory needs: past
    /// 4 GiB it would wrap, which [`EventBatch::check_fits_a_plugin`] refuses before a call.
    pub fn push(&mut self, text: &str) {
        self.bytes.push_str(text);
        self.ends.push(self.bytes.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Text `index`, or `None` past the last one or where the ends do not fit the buffer
    /// (only an unchecked answer can have such ends).
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        self.bytes.get(start..end)
    }

    /// Why these texts cannot be read, if they cannot: the ends must never decrease, stay
    /// within the buffer and fall on character boundaries.
    fn problem(&self) -> Option<String> {
        let mut start = 0usize;
        for (index, end) in self.ends.iter().enumerate() {
            let end = *end as usize;
            if end < start || end > self.bytes.len() || !self.bytes.is_char_boundary(end) {
                return Some(format!("text {index} ends at byte {end}; ends must not decrease (the text before it ended at {start}), stay within the {} bytes and fall on character boundaries", self.bytes.len()));
            }
            start = end;
        }
        None
    }
}

impl TextColumn {
    /// Room for `count` events' texts.
    pub fn with_capacity(count: usize) -> TextColumn {
        TextColumn { present: Vec::with_capacity(count), values: Texts { bytes: String::new(), ends: Vec::with_capacity(count) } }
    }

    /// Appends the next event's text (`None` where it has none).
    pub fn push(&mut self, value: Option<&str>) {
        self.present.push(value.is_some());
        self.values.push(value.unwrap_or_default());
    }

    /// A column of one optional text per event.
    pub fn from_values<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> TextColumn {
        let values = values.into_iter();
        let mut column = TextColumn::with_capacity(values.size_hint().0);
        values.for_each(|value| column.push(value));
        column
    }

    /// Event `index`'s text, or `None` where it has none.
    pub fn get(&self, index: usize) -> Option<&str> {
        if !*self.present.get(index)? {
            return None;
        }
        self.values.get(index)
    }
}

impl EventBatch {
    /// A batch of `size` events with these columns.
    pub fn of_columns(size: usize, columns: Vec<Column>) -> EventBatch {
        EventBatch { size: u32::try_from(size).unwrap_or(u32::MAX), columns }
    }

    /// Refuses a batch a 32-bit plugin cannot be given: a column whose texts take 4 GiB or
    /// more (their ends would wrap). The batch fails with the reason rather than reaching the
    /// plugin with wrong ends; retrying it does not help.
    pub fn check_fits_a_plugin(&self) -> Result<(), PluginError> {
        for column in &self.columns {
            if let ColumnValues::Text(texts) = &column.values
                && u32::try_from(texts.values.bytes.len()).is_err()
            {
                return Err(PluginError::BatchTooLarge(format!("the {:?} texts take {} bytes, more than a plugin's 4 GiB memory", column.field, texts.values.bytes.len())));
            }
        }
        Ok(())
    }
}

/// One value of a plugin's answer, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnsweredValue<'a> {
    Text(&'a str),
    Integer(i64),
    Float(f64),
    Boolean(bool),
}

impl ParameterColumn {
    /// How many values the column holds.
    fn value_count(&self) -> usize {
        match &self.values {
            ParameterValues::Text(texts) => texts.len(),
            ParameterValues::Integer(numbers) => numbers.len(),
            ParameterValues::Float(numbers) => numbers.len(),
            ParameterValues::Boolean(flags) => flags.len(),
        }
    }

    /// Value `index` of the column (the one for event `self.events[index]`).
    fn value(&self, index: usize) -> Option<AnsweredValue<'_>> {
        match &self.values {
            ParameterValues::Text(texts) => texts.get(index).map(AnsweredValue::Text),
            ParameterValues::Integer(numbers) => numbers.get(index).copied().map(AnsweredValue::Integer),
            ParameterValues::Float(numbers) => numbers.get(index).copied().map(AnsweredValue::Float),
            ParameterValues::Boolean(flags) => flags.get(index).copied().map(AnsweredValue::Boolean),
        }
    }

    /// Each event the parameter is set on (its position in the batch) with its value. On a
    /// checked answer (see [`check_answer`]) this yields one entry per entry of `events`.
    pub fn entries(&self) -> impl Iterator<Item = (usize, AnsweredValue<'_>)> + '_ {
        self.events.iter().enumerate().filter_map(|(index, event)| Some((*event as usize, self.value(index)?)))
    }
}

/// The most parameter columns one answer may hold. Setting the answer visits each row once
/// per column that has events, so an unbounded count would let a plugin spend the host's time
/// (which fuel does not count). A plugin sets a handful of parameters; 1,024 is far above that.
pub const MAX_PARAMETER_COLUMNS: usize = 1024;

/// Refuses an answer that does not fit a batch of `size` events: more than
/// [`MAX_PARAMETER_COLUMNS`] columns, a parameter without a name, a value count that differs
/// from its event count, an event position past the batch or not after the one before it,
/// text ends that do not fit their buffer, or a number JSON cannot hold.
pub fn check_answer(columns: &[ParameterColumn], size: usize) -> Result<(), PluginError> {
    if columns.len() > MAX_PARAMETER_COLUMNS {
        return Err(PluginError::Malformed(format!("{} parameter columns, more than the {MAX_PARAMETER_COLUMNS} an answer may hold", columns.len())));
    }
    for column in columns {
        let malformed = |problem: String| PluginError::Malformed(format!("parameter `{}`: {problem}", column.name));
        if column.name.is_empty() {
            return Err(PluginError::Malformed("a parameter has an empty name".into()));
        }
        if column.value_count() != column.events.len() {
            return Err(malformed(format!("{} events but {} values", column.events.len(), column.value_count())));
        }
        if let Some(event) = column.events.iter().find(|event| **event as usize >= size) {
            return Err(malformed(format!("event {event} is past the batch of {size} events")));
        }
        // Ascending positions let the host set the answer row by row, in one pass.
        if let Some(pair) = column.events.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Err(malformed(format!("its events must ascend, but event {} comes after event {}", pair[1], pair[0])));
        }
        match &column.values {
            ParameterValues::Text(texts) => {
                if let Some(problem) = texts.problem() {
                    return Err(malformed(problem));
                }
            }
            ParameterValues::Float(numbers) => {
                if let Some(number) = numbers.iter().find(|number| !number.is_finite()) {
                    return Err(malformed(format!("{number} is not a number JSON can hold")));
                }
            }
            ParameterValues::Integer(_) | ParameterValues::Boolean(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_parameter(name: &str, events: Vec<u32>, values: &[&str]) -> ParameterColumn {
        let mut texts = Texts::new();
        values.iter().for_each(|value| texts.push(value));
        ParameterColumn { name: name.into(), events, values: ParameterValues::Text(texts) }
    }

    #[test]
    fn texts_and_text_columns_read_back_what_was_pushed() {
        let column = TextColumn::from_values([Some("https://a.example/é"), None, Some("")]);
        assert_eq!((column.get(0), column.get(1), column.get(2), column.get(3)), (Some("https://a.example/é"), None, Some(""), None));
        assert_eq!(column.values.ends, [20, 20, 20]);
    }

    #[test]
    fn answers_that_do_not_fit_the_batch_are_refused_with_the_reason() {
        let fine = text_parameter("tag", vec![0, 2], &["a", "b"]);
        check_answer(std::slice::from_ref(&fine), 3).unwrap();
        assert_eq!(fine.entries().collect::<Vec<_>>(), [(0, AnsweredValue::Text("a")), (2, AnsweredValue::Text("b"))]);

        let reason = |columns: &[ParameterColumn]| check_answer(columns, 3).unwrap_err().to_string();
        assert_eq!(reason(&[text_parameter("tag", vec![0, 1], &["a"])]), "the plugin returned a malformed answer: parameter `tag`: 2 events but 1 values");
        assert_eq!(reason(&[text_parameter("tag", vec![3], &["a"])]), "the plugin returned a malformed answer: parameter `tag`: event 3 is past the batch of 3 events");
        assert_eq!(reason(&[text_parameter("tag", vec![2, 1], &["a", "b"])]), "the plugin returned a malformed answer: parameter `tag`: its events must ascend, but event 1 comes after event 2");
        assert!(reason(&[text_parameter("tag", vec![1, 1], &["a", "b"])]).contains("event 1 comes after event 1"));
        assert_eq!(reason(&[text_parameter("", vec![0], &["a"])]), "the plugin returned a malformed answer: a parameter has an empty name");
        let split_character = ParameterColumn { name: "tag".into(), events: vec![0], values: ParameterValues::Text(Texts { bytes: "é".into(), ends: vec![1] }) };
        assert!(reason(&[split_character]).contains("text 0 ends at byte 1; ends must not decrease"));
        let past_the_buffer = ParameterColumn { name: "tag".into(), events: vec![0, 1], values: ParameterValues::Text(Texts { bytes: "ab".into(), ends: vec![2, 1] }) };
        assert!(reason(&[past_the_buffer]).contains("text 1 ends at byte 1; ends must not decrease (the text before it ended at 2)"));
        let too_many: Vec<ParameterColumn> = (0..=MAX_PARAMETER_COLUMNS).map(|_| text_parameter("tag", vec![], &[])).collect();
        assert_eq!(reason(&too_many), "the plugin returned a malformed answer: 1025 parameter columns, more than the 1024 an answer may hold");
        let not_a_number = ParameterColumn { name: "score".into(), events: vec![0], values: ParameterValues::Float(vec![f64::NAN]) };
        assert!(reason(&[not_a_number]).contains("NaN is not a number JSON can hold"));
    }
}
