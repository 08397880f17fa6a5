//! `stdio.prompt`: Lune's four prompt kinds, answered line by line from standard
//! input.
//!
//! Lune draws interactive widgets (dialoguer) and fails without a terminal. Lunet
//! asks with a plain line-based prompt instead, written to stderr, and reads the
//! answer as one line of standard input, so the same script works in a terminal and
//! with piped input (tests, CI, `yes | lunet run ...`). At the end of input a prompt
//! gives its default (text: the default or `""`; confirm: the default or `false`;
//! select and multiselect: nil); an answer that is not valid asks again.

use std::io::{BufRead, Write};

use mlua::{Lua, MultiValue, Result, Value};

use lunet_runtime::args;

/// What to ask, checked on the Luau thread, then moved to the blocking reader.
pub struct Prompt {
    kind: Kind,
    message: String,
    default_text: Option<String>,
    default_bool: Option<bool>,
    options: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Confirm,
    Select,
    MultiSelect,
}

/// The answer, turned into Luau values on the Luau thread.
pub enum Answer {
    Text(String),
    Bool(bool),
    Index(usize),
    Indices(Vec<usize>),
    None,
}

const KINDS: &str = "text, confirm, select, multiselect";

impl Prompt {
    /// Checks `prompt(kind?, message?, defaultOrOptions?)` as Lune does: the kind is
    /// nil (text) or one of the four names (any case); confirm needs a message;
    /// select and multiselect need a table of options.
    pub fn from_args(mut values: MultiValue) -> Result<Prompt> {
        let kind_value = values.pop_front().unwrap_or(Value::Nil);
        let kind = match args::optional_string(&kind_value, "argument #1 to 'stdio.prompt'")? {
            None => Kind::Text,
            Some(name) => match name.to_str()?.trim().to_ascii_lowercase().as_str() {
                "text" => Kind::Text,
                "confirm" => Kind::Confirm,
                "select" => Kind::Select,
                "multiselect" => Kind::MultiSelect,
                _ => {
                    return Err(args::invalid(
                        "argument #1 to 'stdio.prompt'",
                        &format!("one of {KINDS}"),
                        format!("'{}'", name.to_string_lossy()),
                    ));
                }
            },
        };
        let message_value = values.pop_front().unwrap_or(Value::Nil);
        let message = args::optional_string(&message_value, "argument #2 to 'stdio.prompt'")?
            .map(|s| s.to_string_lossy());
        let third = values.pop_front().unwrap_or(Value::Nil);
        let field = "argument #3 to 'stdio.prompt'";
        let mut prompt = Prompt {
            kind,
            message: message.clone().unwrap_or_default(),
            default_text: None,
            default_bool: None,
            options: Vec::new(),
        };
        let mut has_options = false;
        match &third {
            Value::Nil => {}
            Value::Boolean(b) => prompt.default_bool = Some(*b),
            Value::String(s) => prompt.default_text = Some(s.to_string_lossy()),
            Value::Table(t) => {
                has_options = true;
                for value in t.sequence_values::<Value>() {
                    let value = value?;
                    prompt.options.push(
                        args::string(&value, "an option of 'stdio.prompt'")?.to_string_lossy(),
                    );
                }
            }
            other => return Err(args::wrong(field, "boolean, string, table or nil", other)),
        }
        if kind == Kind::Confirm && message.is_none() {
            return Err(args::wrong(
                "argument #2 to 'stdio.prompt'",
                "string (a confirm prompt needs a message)",
                &message_value,
            ));
        }
        if matches!(kind, Kind::Select | Kind::MultiSelect)
            && (!has_options || prompt.options.is_empty())
        {
            return Err(args::wrong(
                field,
                "table of options (select and multiselect need them)",
                &third,
            ));
        }
        Ok(prompt)
    }

    /// Asks on stderr and reads answers from `input` until one is valid or the
    /// input ends. Blocking: run it on a blocking thread.
    pub fn ask(&self, input: &mut impl BufRead, out: &mut impl Write) -> std::io::Result<Answer> {
        loop {
            self.show(out)?;
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                // End of input: the default, and a newline so later output starts clean.
                writeln!(out)?;
                out.flush()?;
                return Ok(self.at_end());
            }
            let answer = line.trim_end_matches(['\n', '\r']);
            if let Some(answer) = self.parse(answer) {
                return Ok(answer);
            }
            writeln!(out, "Not a valid answer: {:?}", answer.trim())?;
        }
    }

    fn show(&self, out: &mut impl Write) -> std::io::Result<()> {
        if matches!(self.kind, Kind::Select | Kind::MultiSelect) {
            if !self.message.is_empty() {
                writeln!(out, "{}", self.message)?;
            }
            for (i, option) in self.options.iter().enumerate() {
                writeln!(out, "  {}) {option}", i + 1)?;
            }
        }
        match self.kind {
            Kind::Text => match &self.default_text {
                Some(default) => write!(out, "{} [{default}]: ", self.message)?,
                None if self.message.is_empty() => write!(out, "> ")?,
                None => write!(out, "{}: ", self.message)?,
            },
            Kind::Confirm => {
                let hint = match self.default_bool {
                    Some(true) => "Y/n",
                    Some(false) => "y/N",
                    None => "y/n",
                };
                write!(out, "{} [{hint}]: ", self.message)?
            }
            Kind::Select => write!(out, "Choose one (number or text): ")?,
            Kind::MultiSelect => write!(out, "Choose any, separated by commas: ")?,
        }
        out.flush()
    }

    fn at_end(&self) -> Answer {
        match self.kind {
            Kind::Text => Answer::Text(self.default_text.clone().unwrap_or_default()),
            Kind::Confirm => Answer::Bool(self.default_bool.unwrap_or(false)),
            Kind::Select | Kind::MultiSelect => Answer::None,
        }
    }

    /// One option by its 1-based number or its exact text.
    fn option(&self, answer: &str) -> Option<usize> {
        let answer = answer.trim();
        match answer.parse::<usize>() {
            Ok(n) if (1..=self.options.len()).contains(&n) => Some(n),
            _ => self.options.iter().position(|o| o == answer).map(|i| i + 1),
        }
    }

    fn parse(&self, answer: &str) -> Option<Answer> {
        match self.kind {
            Kind::Text => Some(Answer::Text(match (&self.default_text, answer) {
                (Some(default), "") => default.clone(),
                _ => answer.to_string(),
            })),
            Kind::Confirm => match answer.trim().to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" => Some(Answer::Bool(true)),
                "n" | "no" | "false" => Some(Answer::Bool(false)),
                "" => self.default_bool.map(Answer::Bool),
                _ => None,
            },
            Kind::Select => self.option(answer).map(Answer::Index),
            Kind::MultiSelect => {
                let mut chosen = Vec::new();
                for part in answer.split(',').filter(|p| !p.trim().is_empty()) {
                    let index = self.option(part)?;
                    if !chosen.contains(&index) {
                        chosen.push(index);
                    }
                }
                chosen.sort_unstable();
                Some(Answer::Indices(chosen))
            }
        }
    }
}

impl Answer {
    pub fn into_value(self, lua: &Lua) -> Result<Value> {
        Ok(match self {
            Answer::Text(s) => Value::String(lua.create_string(s)?),
            Answer::Bool(b) => Value::Boolean(b),
            Answer::Index(i) => Value::Integer(i as i64),
            Answer::Indices(v) => Value::Table(lua.create_sequence_from(v)?),
            Answer::None => Value::Nil,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(lua: &Lua, args: &str, input: &str) -> (String, String) {
        let values: MultiValue = lua.load(format!("return {args}")).eval().unwrap();
        let prompt = Prompt::from_args(values).unwrap();
        let mut out = Vec::new();
        let answer = prompt.ask(&mut input.as_bytes(), &mut out).unwrap();
        let value = answer.into_value(lua).unwrap();
        let shown: String = lua
            .load("local v = ... if type(v) == 'table' then return table.concat(v, ',') end return tostring(v)")
            .call(value)
            .unwrap();
        (shown, String::from_utf8(out).unwrap())
    }

    #[test]
    fn answers_come_from_lines_and_ends_give_defaults() {
        let lua = Lua::new();
        assert_eq!(ask(&lua, "'text', 'Name'", "Ada\n").0, "Ada");
        assert_eq!(ask(&lua, "nil", "x\r\n").0, "x");
        assert_eq!(ask(&lua, "'text', 'Name', 'Bob'", "\n").0, "Bob");
        assert_eq!(ask(&lua, "'text', 'Name', 'Bob'", "").0, "Bob");
        assert_eq!(ask(&lua, "'text'", "").0, "");
        assert_eq!(ask(&lua, "'confirm', 'Sure?'", "maybe\nYES\n").0, "true");
        assert_eq!(ask(&lua, "'confirm', 'Sure?', true", "\n").0, "true");
        assert_eq!(ask(&lua, "'confirm', 'Sure?'", "").0, "false");
        let (answer, shown) = ask(&lua, "'select', 'Pick', {'a', 'b', 'c'}", "9\nb\n");
        assert_eq!(answer, "2");
        assert!(
            shown.contains("  3) c") && shown.contains("Not a valid answer"),
            "{shown}"
        );
        assert_eq!(ask(&lua, "'select', 'Pick', {'a', 'b'}", "").0, "nil");
        assert_eq!(
            ask(&lua, "'multiselect', 'Pick', {'a', 'b', 'c'}", "3, a\n").0,
            "1,3"
        );
        assert_eq!(ask(&lua, "'multiselect', 'Pick', {'a'}", "\n").0, "");
        assert_eq!(ask(&lua, "'multiselect', 'Pick', {'a'}", "").0, "nil");
    }

    #[test]
    fn arguments_are_checked_as_lune_does() {
        let lua = Lua::new();
        let check = |args: &str| {
            let values: MultiValue = lua.load(format!("return {args}")).eval().unwrap();
            Prompt::from_args(values).err().map(|e| e.to_string())
        };
        assert!(
            check("'Confirm', 'ok?'").is_none(),
            "kinds are case-insensitive"
        );
        assert!(check("'ask'").unwrap().contains("multiselect"));
        assert!(check("'confirm'").unwrap().contains("message"));
        assert!(
            check("'select', 'pick', {}")
                .unwrap()
                .contains("table of options"),
            "an empty option list could never be answered: refused"
        );
        assert!(
            check("'select', 'Pick'")
                .unwrap()
                .contains("table of options")
        );
        assert!(check("'text', 'x', 5").unwrap().contains("got number"));
    }
}
