//! Reading query results: batched row iteration and typed accessors.

use std::collections::VecDeque;
use std::rc::Rc;

use crate::bindings::retort::migration::op::Cursor;
use crate::{Error, Result, Value};

/// How many rows one call to the host returns.
const BATCH: u32 = 1024;

/// The rows of a query, fetched from the host `BATCH` at a time.
pub struct Rows {
    cursor: Cursor,
    columns: Rc<[String]>,
    buffered: VecDeque<Vec<Value>>,
    exhausted: bool,
}

impl Rows {
    pub(crate) fn new(cursor: Cursor) -> Self {
        let columns = cursor.columns().into();
        Rows {
            cursor,
            columns,
            buffered: VecDeque::new(),
            exhausted: false,
        }
    }

    /// Column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl Iterator for Rows {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffered.is_empty() && !self.exhausted {
            match self.cursor.next(BATCH) {
                Ok(batch) if batch.is_empty() => self.exhausted = true,
                Ok(batch) => self.buffered.extend(batch),
                Err(e) => {
                    self.exhausted = true;
                    return Some(Err(e.into()));
                }
            }
        }
        let values = self.buffered.pop_front()?;
        Some(Ok(Row {
            columns: Rc::clone(&self.columns),
            values,
        }))
    }
}

/// One row of a query.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Rc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// The value at a position or under a column name, converted to `T`.
    pub fn get<T: FromValue>(&self, index: impl ColumnIndex) -> Result<T> {
        let i = index.position(&self.columns)?;
        T::from_value(&self.values[i]).ok_or_else(|| {
            Error::msg(format!(
                "column {:?} holds {:?}, which is not a {}",
                self.columns[i],
                self.values[i],
                std::any::type_name::<T>()
            ))
        })
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// A column position or name.
pub trait ColumnIndex {
    fn position(&self, columns: &[String]) -> Result<usize>;
}

impl ColumnIndex for usize {
    fn position(&self, columns: &[String]) -> Result<usize> {
        if *self < columns.len() {
            Ok(*self)
        } else {
            Err(Error::msg(format!(
                "column {self} is out of range: the row has {}",
                columns.len()
            )))
        }
    }
}

impl ColumnIndex for &str {
    fn position(&self, columns: &[String]) -> Result<usize> {
        columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(self))
            .ok_or_else(|| Error::msg(format!("no column {self:?} in {columns:?}")))
    }
}

/// A Rust type a [`Value`] converts to.
pub trait FromValue: Sized {
    fn from_value(value: &Value) -> Option<Self>;
}

impl FromValue for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::S64(v) => Some(*v),
            Value::Boolean(b) => Some(*b as i64),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::F64(v) => Some(*v),
            Value::S64(v) => Some(*v as f64),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Boolean(b) => Some(*b),
            Value::S64(v) => Some(*v != 0),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Blob(b) => Some(b.clone()),
            Value::Text(s) => Some(s.clone().into_bytes()),
            _ => None,
        }
    }
}

impl FromValue for Value {
    fn from_value(value: &Value) -> Option<Self> {
        Some(value.clone())
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

macro_rules! value_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from($v: $t) -> Self { $e }
        })*
    };
}

value_from! {
    i64 => |v| Value::S64(v),
    i32 => |v| Value::S64(v.into()),
    u32 => |v| Value::S64(v.into()),
    f64 => |v| Value::F64(v),
    bool => |v| Value::Boolean(v),
    String => |v| Value::Text(v),
    &str => |v| Value::Text(v.to_string()),
    &String => |v| Value::Text(v.clone()),
    Vec<u8> => |v| Value::Blob(v),
    &[u8] => |v| Value::Blob(v.to_vec()),
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
