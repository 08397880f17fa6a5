//! placeholder
pub fn create(lua: &mlua::Lua) -> mlua::Result<mlua::Value> {
    Ok(mlua::Value::Table(lua.create_table()?))
}
