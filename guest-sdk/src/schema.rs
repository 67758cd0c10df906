//! Builders for tables, columns, indexes and constraints.

use crate::bindings::retort::migration::types as wit;
use crate::{ReferentialAction, SqlType};

/// A column. Nullable, with no default, until the builder says otherwise.
#[derive(Debug, Clone)]
pub struct Column(pub(crate) wit::Column);

impl Column {
    pub fn new(name: impl Into<String>, ty: SqlType) -> Self {
        Column(wit::Column {
            name: name.into(),
            type_: ty,
            nullable: true,
            primary_key: false,
            autoincrement: false,
            unique: false,
            server_default: None,
            comment: None,
        })
    }

    /// Part of the primary key (implies NOT NULL).
    pub fn primary_key(mut self) -> Self {
        self.0.primary_key = true;
        self.0.nullable = false;
        self
    }

    pub fn autoincrement(mut self) -> Self {
        self.0.autoincrement = true;
        self
    }

    pub fn not_null(mut self) -> Self {
        self.0.nullable = false;
        self
    }

    pub fn nullable(mut self, nullable: bool) -> Self {
        self.0.nullable = nullable;
        self
    }

    pub fn unique(mut self) -> Self {
        self.0.unique = true;
        self
    }

    /// A SQL expression for the column's DEFAULT, e.g. `"'active'"` or `"0"`.
    pub fn server_default(mut self, expression: impl Into<String>) -> Self {
        self.0.server_default = Some(expression.into());
        self
    }

    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.0.comment = Some(comment.into());
        self
    }
}

/// A foreign key from `columns` to `referred_table(referred_columns)`.
#[derive(Debug, Clone)]
pub struct ForeignKey(pub(crate) wit::ForeignKey);

impl ForeignKey {
    pub fn new(
        columns: &[&str],
        referred_table: impl Into<String>,
        referred_columns: &[&str],
    ) -> Self {
        ForeignKey(wit::ForeignKey {
            name: None,
            columns: strings(columns),
            referred_table: referred_table.into(),
            referred_columns: strings(referred_columns),
            on_delete: ReferentialAction::NoAction,
            on_update: ReferentialAction::NoAction,
        })
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = Some(name.into());
        self
    }

    pub fn on_delete(mut self, action: ReferentialAction) -> Self {
        self.0.on_delete = action;
        self
    }

    pub fn on_update(mut self, action: ReferentialAction) -> Self {
        self.0.on_update = action;
        self
    }
}

/// A UNIQUE constraint over one or more columns.
#[derive(Debug, Clone)]
pub struct UniqueConstraint(pub(crate) wit::UniqueConstraint);

impl UniqueConstraint {
    pub fn new(columns: &[&str]) -> Self {
        UniqueConstraint(wit::UniqueConstraint {
            name: None,
            columns: strings(columns),
        })
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = Some(name.into());
        self
    }
}

/// A CHECK constraint.
#[derive(Debug, Clone)]
pub struct CheckConstraint(pub(crate) wit::CheckConstraint);

impl CheckConstraint {
    pub fn new(expression: impl Into<String>) -> Self {
        CheckConstraint(wit::CheckConstraint {
            name: None,
            expression: expression.into(),
        })
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = Some(name.into());
        self
    }
}

/// A table definition for [`crate::create_table`].
#[derive(Debug, Clone)]
pub struct Table(pub(crate) wit::Table);

impl Table {
    pub fn new(name: impl Into<String>) -> Self {
        Table(wit::Table {
            name: name.into(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            foreign_keys: Vec::new(),
            unique_constraints: Vec::new(),
            check_constraints: Vec::new(),
            comment: None,
        })
    }

    pub fn column(mut self, column: Column) -> Self {
        self.0.columns.push(column.0);
        self
    }

    /// A composite primary key.
    pub fn primary_key(mut self, columns: &[&str]) -> Self {
        self.0.primary_key = strings(columns);
        self
    }

    pub fn foreign_key(mut self, key: ForeignKey) -> Self {
        self.0.foreign_keys.push(key.0);
        self
    }

    pub fn unique(mut self, constraint: UniqueConstraint) -> Self {
        self.0.unique_constraints.push(constraint.0);
        self
    }

    pub fn check(mut self, constraint: CheckConstraint) -> Self {
        self.0.check_constraints.push(constraint.0);
        self
    }

    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.0.comment = Some(comment.into());
        self
    }
}

/// An index for [`crate::create_index`].
#[derive(Debug, Clone)]
pub struct Index(pub(crate) wit::Index);

impl Index {
    pub fn new(name: impl Into<String>, table: impl Into<String>, columns: &[&str]) -> Self {
        Index(wit::Index {
            name: name.into(),
            table: table.into(),
            columns: strings(columns),
            unique: false,
        })
    }

    pub fn unique(mut self) -> Self {
        self.0.unique = true;
        self
    }
}

/// Changes to one column for [`crate::alter_column`]; what is not set stays as it is.
#[derive(Debug, Clone, Default)]
pub struct Alter(pub(crate) wit::ColumnAlteration);

// The record is generated by wit-bindgen, which cannot derive Default for it alone.
#[allow(clippy::derivable_impls)]
impl Default for wit::ColumnAlteration {
    fn default() -> Self {
        wit::ColumnAlteration {
            new_name: None,
            new_type: None,
            nullable: None,
            server_default: None,
        }
    }
}

impl Alter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn rename(mut self, new_name: impl Into<String>) -> Self {
        self.0.new_name = Some(new_name.into());
        self
    }

    pub fn set_type(mut self, ty: SqlType) -> Self {
        self.0.new_type = Some(ty);
        self
    }

    pub fn nullable(mut self, nullable: bool) -> Self {
        self.0.nullable = Some(nullable);
        self
    }

    /// Sets the DEFAULT expression.
    pub fn server_default(mut self, expression: impl Into<String>) -> Self {
        self.0.server_default = Some(Some(expression.into()));
        self
    }

    /// Removes the DEFAULT.
    pub fn drop_default(mut self) -> Self {
        self.0.server_default = Some(None);
        self
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
