//! Schemas: what a provider's configuration, a resource and a data source
//! hold, built by value (`Schema::new().attribute(..)`).

use std::collections::BTreeMap;

use crate::cty::Type;

/// The schema of a provider's configuration, a resource or a data source:
/// a version (of a resource's state) and a block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Schema {
    pub(crate) version: i64,
    pub(crate) block: Block,
}

impl Schema {
    /// An empty schema, version 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state's schema version: bump it when the stored shape changes,
    /// and upgrade older states in [`Resource::upgrade`](crate::Resource::upgrade).
    #[must_use]
    pub fn version(mut self, version: i64) -> Self {
        self.version = version;
        self
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.block.attributes.push(attribute);
        self
    }

    /// Adds a nested block type.
    #[must_use]
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.block.blocks.push(block);
        self
    }

    /// The description shown in documentation.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.block.description = text.into();
        self
    }

    /// The state's schema version.
    pub fn schema_version(&self) -> i64 {
        self.version
    }

    /// The top-level block.
    pub fn root(&self) -> &Block {
        &self.block
    }

    /// The object type values of this schema have (every attribute and
    /// nested block type), which the codecs need.
    pub fn value_type(&self) -> Type {
        self.block.value_type()
    }
}

/// A block: attributes and nested block types.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Block {
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) blocks: Vec<NestedBlock>,
    pub(crate) description: String,
    pub(crate) deprecated: bool,
}

impl Block {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attribute(mut self, attribute: Attribute) -> Self {
        self.attributes.push(attribute);
        self
    }

    /// Adds a nested block type.
    #[must_use]
    pub fn block(mut self, block: NestedBlock) -> Self {
        self.blocks.push(block);
        self
    }

    /// The description shown in documentation.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Marks the block deprecated.
    #[must_use]
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// The attributes.
    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    /// The nested block types.
    pub fn blocks(&self) -> &[NestedBlock] {
        &self.blocks
    }

    /// The object type of this block's values.
    pub fn value_type(&self) -> Type {
        let mut attributes: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.clone(), a.ty.clone()))
            .collect();
        for nested in &self.blocks {
            let object = nested.block.value_type();
            let ty = match nested.nesting {
                Nesting::Single | Nesting::Group => object,
                Nesting::List => Type::list(object),
                Nesting::Set => Type::set(object),
                Nesting::Map => Type::map(object),
            };
            attributes.insert(nested.type_name.clone(), ty);
        }
        Type::Object(attributes)
    }
}

/// An attribute of a block.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    pub(crate) name: String,
    pub(crate) ty: Type,
    pub(crate) required: bool,
    pub(crate) optional: bool,
    pub(crate) computed: bool,
    pub(crate) sensitive: bool,
    pub(crate) requires_replace: bool,
    pub(crate) description: String,
    pub(crate) deprecated: bool,
}

impl Attribute {
    /// An attribute `name` of type `ty`. Say whether it is
    /// [`required`](Self::required), [`optional`](Self::optional) and/or
    /// [`computed`](Self::computed); with none of them it is optional.
    pub fn new(name: impl Into<String>, ty: Type) -> Self {
        Self {
            name: name.into(),
            ty,
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            requires_replace: false,
            description: String::new(),
            deprecated: false,
        }
    }

    /// Configuration must set it.
    #[must_use]
    pub fn required(mut self) -> Self {
        self.required = true;
        self.optional = false;
        self
    }

    /// Configuration may set it.
    #[must_use]
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self.required = false;
        self
    }

    /// The provider sets it (as well, with [`optional`](Self::optional)).
    /// A computed attribute configuration leaves null is planned unknown
    /// whenever the resource is created or changes.
    #[must_use]
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self.required = false;
        self
    }

    /// Hidden from plan output and logs.
    #[must_use]
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }

    /// A change of this attribute replaces the resource (destroy, then
    /// create) instead of updating it in place.
    #[must_use]
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }

    /// The description shown in documentation.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Marks the attribute deprecated.
    #[must_use]
    pub fn deprecated(mut self) -> Self {
        self.deprecated = true;
        self
    }

    /// The attribute's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The attribute's type.
    pub fn value_type(&self) -> &Type {
        &self.ty
    }

    /// Whether configuration must set it.
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// Whether configuration may set it. An attribute that is neither
    /// required nor computed is optional.
    pub fn is_optional(&self) -> bool {
        self.optional || (!self.required && !self.computed)
    }

    /// Whether the provider sets it.
    pub fn is_computed(&self) -> bool {
        self.computed
    }

    /// Whether a change replaces the resource.
    pub fn is_requires_replace(&self) -> bool {
        self.requires_replace
    }
}

/// How instances of a nested block type are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Nesting {
    /// At most one block; an object or null.
    Single,
    /// Exactly one block, its attributes null when absent.
    Group,
    /// A list of blocks.
    List,
    /// A set of blocks.
    Set,
    /// Blocks by label: a map.
    Map,
}

/// A nested block type of a block.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedBlock {
    pub(crate) type_name: String,
    pub(crate) nesting: Nesting,
    pub(crate) block: Block,
    pub(crate) min_items: i64,
    pub(crate) max_items: i64,
}

impl NestedBlock {
    /// Blocks named `type_name`, grouped as `nesting`, each shaped as `block`.
    pub fn new(type_name: impl Into<String>, nesting: Nesting, block: Block) -> Self {
        Self {
            type_name: type_name.into(),
            nesting,
            block,
            min_items: 0,
            max_items: 0,
        }
    }

    /// The fewest blocks configuration may have (lists and sets).
    #[must_use]
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }

    /// The most blocks configuration may have (lists and sets; 0: no limit).
    #[must_use]
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }

    /// The block type's name.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// How instances are grouped.
    pub fn nesting(&self) -> Nesting {
        self.nesting
    }

    /// The shape of each block.
    pub fn block(&self) -> &Block {
        &self.block
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_type_has_every_attribute_and_block_type() {
        let schema = Schema::new()
            .attribute(Attribute::new("id", Type::String).computed())
            .block(NestedBlock::new(
                "rule",
                Nesting::List,
                Block::new().attribute(Attribute::new("name", Type::String).required()),
            ))
            .block(NestedBlock::new("one", Nesting::Single, Block::new()))
            .block(NestedBlock::new("by_key", Nesting::Map, Block::new()))
            .block(NestedBlock::new("set", Nesting::Set, Block::new()));
        let empty = Type::object::<&str>([]);
        assert_eq!(
            schema.value_type(),
            Type::object([
                ("id", Type::String),
                ("rule", Type::list(Type::object([("name", Type::String)]))),
                ("one", empty.clone()),
                ("by_key", Type::map(empty.clone())),
                ("set", Type::set(empty)),
            ])
        );
    }

    #[test]
    fn flags_say_who_sets_an_attribute() {
        let a = Attribute::new("a", Type::String);
        assert!(a.is_optional() && !a.is_required() && !a.is_computed());
        let a = Attribute::new("a", Type::String).optional().computed();
        assert!(a.is_optional() && a.is_computed());
        let a = Attribute::new("a", Type::String).computed();
        assert!(!a.is_optional() && a.is_computed());
        let a = Attribute::new("a", Type::String).required();
        assert!(a.is_required() && !a.is_optional());
    }
}
