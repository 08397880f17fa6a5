//! What `luau.compile` and `luau.load` take as options, read and checked with
//! `lunet_runtime::args` (a bad value names its field: `options.debugLevel`).
//!
//! Defaults are Lune's: compile at optimization level 1, coverage 0, debug 1; load
//! under the name `luau.load(...)`, in the global environment, globals injected into
//! a custom environment, no native code, no bytecode from elsewhere
//! (`trustBytecode`, Lunet's own). As in Lune, `luau.load`'s options may also be a
//! string, taken as the debug name. This module only reads options; what they
//! do is [`super`]'s business.

use lunet_runtime::args;
use mlua::chunk::Compiler;
use mlua::{Result, Table, Value};

/// The debug name of a chunk loaded without one.
const DEFAULT_DEBUG_NAME: &str = "luau.load(...)";

/// `luau.compile`'s options: Luau compiler levels, each 0 to 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompileOptions {
    optimization_level: u8,
    coverage_level: u8,
    debug_level: u8,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            optimization_level: 1,
            coverage_level: 0,
            debug_level: 1,
        }
    }
}

impl CompileOptions {
    /// Reads the options argument: nil (the defaults) or a table.
    pub(crate) fn from_value(value: &Value) -> Result<CompileOptions> {
        let mut options = CompileOptions::default();
        let Some(table) = args::optional_table(value, "options")? else {
            return Ok(options);
        };
        for (field, level) in [
            ("optimizationLevel", &mut options.optimization_level),
            ("coverageLevel", &mut options.coverage_level),
            ("debugLevel", &mut options.debug_level),
        ] {
            let given: Value = table.get(field)?;
            if let Some(given) =
                args::optional_integer_in(&given, &format!("options.{field}"), 0..=2)?
            {
                *level = given;
            }
        }
        Ok(options)
    }

    /// A Luau compiler set to these levels.
    pub(crate) fn compiler(&self) -> Compiler {
        Compiler::new()
            .set_optimization_level(self.optimization_level)
            .set_coverage_level(self.coverage_level)
            .set_debug_level(self.debug_level)
    }
}

/// `luau.load`'s options.
pub(crate) struct LoadOptions {
    /// The chunk's name in error messages and tracebacks.
    pub(crate) debug_name: String,
    /// A custom environment (see [`super::environment`]).
    pub(crate) environment: Option<Table>,
    /// Whether the globals are copied into a custom environment.
    pub(crate) inject_globals: bool,
    /// Whether the chunk is compiled to native code.
    pub(crate) codegen_enabled: bool,
    /// Whether bytecode that `luau.compile` did not produce here may be loaded.
    pub(crate) trust_bytecode: bool,
}

impl LoadOptions {
    /// Reads the options argument: nil (the defaults), a debug name, or a table.
    pub(crate) fn from_value(value: &Value) -> Result<LoadOptions> {
        let mut options = LoadOptions {
            debug_name: DEFAULT_DEBUG_NAME.to_string(),
            environment: None,
            inject_globals: true,
            codegen_enabled: false,
            trust_bytecode: false,
        };
        let table = match value {
            Value::Nil => return Ok(options),
            Value::String(name) => {
                options.debug_name = name.to_string_lossy();
                return Ok(options);
            }
            Value::Table(table) => table,
            other => return Err(args::wrong("options", "string or table", other)),
        };
        let field = |name: &str| -> Result<Value> { table.get(name) };
        if let Some(name) = args::optional_string(&field("debugName")?, "options.debugName")? {
            options.debug_name = name.to_string_lossy();
        }
        options.environment = args::optional_table(&field("environment")?, "options.environment")?;
        if let Some(inject) =
            args::optional_boolean(&field("injectGlobals")?, "options.injectGlobals")?
        {
            options.inject_globals = inject;
        }
        if let Some(codegen) =
            args::optional_boolean(&field("codegenEnabled")?, "options.codegenEnabled")?
        {
            options.codegen_enabled = codegen;
        }
        if let Some(trust) =
            args::optional_boolean(&field("trustBytecode")?, "options.trustBytecode")?
        {
            options.trust_bytecode = trust;
        }
        Ok(options)
    }
}
