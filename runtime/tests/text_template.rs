//! Chat-template rendering against outputs of Python Jinja2 configured as transformers'
//! `apply_chat_template` (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, the
//! transformers `tojson`), recorded from jinja2 3.1.6.

mod text_support;

use concord_core::Error;
use concord_runtime::text::{ChatMessage, ChatTemplate};
use serde_json::json;
use text_support::{BOS, DEEPSEEK_V3_0324_TEMPLATE, DEEPSEEK_V3_TEMPLATE, EOS};

fn v3() -> ChatTemplate {
    ChatTemplate::new(DEEPSEEK_V3_TEMPLATE, BOS, EOS).unwrap()
}
fn v3_0324() -> ChatTemplate {
    ChatTemplate::new(DEEPSEEK_V3_0324_TEMPLATE, BOS, EOS).unwrap()
}

fn messages(v: serde_json::Value) -> Vec<ChatMessage> {
    serde_json::from_value(v).unwrap()
}

fn render_both(msgs: &[ChatMessage], add_generation_prompt: bool) -> [String; 2] {
    [
        v3().render(msgs, add_generation_prompt).unwrap(),
        v3_0324().render(msgs, add_generation_prompt).unwrap(),
    ]
}

fn tool_conversation() -> serde_json::Value {
    json!([
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}
        ]},
        {"role": "tool", "content": "18C"},
        {"role": "tool", "content": "12:00"},
        {"role": "assistant", "content": "It is 18C."},
        {"role": "user", "content": "Thanks"}
    ])
}

#[test]
fn spec_example_system_user_generation_prompt() {
    let msgs = vec![ChatMessage::system("S"), ChatMessage::user("U")];
    for out in render_both(&msgs, true) {
        assert_eq!(out, "<｜begin▁of▁sentence｜>S<｜User｜>U<｜Assistant｜>");
    }
}

#[test]
fn spec_example_two_turns() {
    let msgs = vec![
        ChatMessage::user("Q1"),
        ChatMessage::assistant("A1"),
        ChatMessage::user("Q2"),
    ];
    for out in render_both(&msgs, true) {
        assert_eq!(
            out,
            "<｜begin▁of▁sentence｜><｜User｜>Q1<｜Assistant｜>A1<｜end▁of▁sentence｜><｜User｜>Q2<｜Assistant｜>"
        );
    }
}

#[test]
fn without_generation_prompt() {
    let msgs = vec![ChatMessage::user("Q1")];
    for out in render_both(&msgs, false) {
        assert_eq!(out, "<｜begin▁of▁sentence｜><｜User｜>Q1");
    }
}

#[test]
fn system_messages_v3_keeps_last_v0324_joins() {
    let msgs = vec![
        ChatMessage::system("S1"),
        ChatMessage::system("S2"),
        ChatMessage::user("U"),
    ];
    let [old, new] = render_both(&msgs, false);
    assert_eq!(old, "<｜begin▁of▁sentence｜>S2<｜User｜>U");
    assert_eq!(new, "<｜begin▁of▁sentence｜>S1\n\nS2<｜User｜>U");
}

#[test]
fn tool_calls_and_outputs() {
    let msgs = messages(tool_conversation());
    let expected = "<｜begin▁of▁sentence｜><｜User｜>Weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>18C<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>12:00<｜tool▁output▁end｜><｜tool▁outputs▁end｜>It is 18C.<｜end▁of▁sentence｜><｜User｜>Thanks<｜Assistant｜>";
    for out in render_both(&msgs, true) {
        assert_eq!(out, expected);
    }
}

#[test]
fn conversation_ending_in_tool_output_closes_outputs_and_has_no_prompt() {
    let mut v = tool_conversation();
    v.as_array_mut().unwrap().truncate(3);
    let msgs = messages(v);
    let expected = "<｜begin▁of▁sentence｜><｜User｜>Weather?<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>\n<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜><｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>18C<｜tool▁output▁end｜><｜tool▁outputs▁end｜>";
    for out in render_both(&msgs, true) {
        assert_eq!(out, expected);
    }
}

#[test]
fn chat_message_serde() {
    let m: ChatMessage = serde_json::from_value(json!({
        "role": "tool", "content": "x", "tool_call_id": "call_1", "name": "f"
    }))
    .unwrap();
    assert_eq!(m.role, "tool");
    assert_eq!(m.content.as_deref(), Some("x"));
    assert_eq!(m.tool_calls, None);
    assert_eq!(m.extra["tool_call_id"], "call_1");
    let back = serde_json::to_value(&m).unwrap();
    assert_eq!(
        back,
        json!({"role": "tool", "content": "x", "tool_call_id": "call_1", "name": "f"})
    );
    // Missing content deserializes as None and is rendered as `none`.
    let m: ChatMessage = serde_json::from_value(json!({"role": "assistant"})).unwrap();
    assert_eq!(m.content, None);
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({"role": "assistant", "content": null})
    );
    let t = ChatTemplate::new(
        "{{ messages[0].content is none }}|{{ 'tool_calls' in messages[0] }}|{{ messages[1].name }}",
        "",
        "",
    )
    .unwrap();
    let msgs = messages(json!([
        {"role": "assistant", "content": null},
        {"role": "tool", "content": "r", "name": "f"}
    ]));
    assert_eq!(t.render(&msgs, false).unwrap(), "True|False|f");
}

#[test]
fn trim_and_lstrip_blocks() {
    let t = ChatTemplate::new(
        "{% for m in messages %}\n  {% if m.role == 'user' %}\n    [{{ m.content }}]\n  {% endif %}\n{% endfor %}\n",
        "",
        "",
    )
    .unwrap();
    let msgs = vec![
        ChatMessage::user("a"),
        ChatMessage::system("b"),
        ChatMessage::user("c"),
    ];
    assert_eq!(t.render(&msgs, false).unwrap(), "    [a]\n    [c]\n");
}

#[test]
fn context_variables() {
    let t = ChatTemplate::new(
        "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools is none }}|{{ messages|length }}",
        "<s>",
        "</s>",
    )
    .unwrap();
    assert_eq!(
        t.render(&[ChatMessage::user("x")], true).unwrap(),
        "<s>|</s>|True|True|1"
    );
}

#[test]
fn tojson_like_transformers() {
    let t = ChatTemplate::new(
        "{{ {'a': [1, 2.5, 'é<\"'], 'b': none, 'c': true}|tojson }}|{{ [1, {'k': 'v'}]|tojson(indent=2) }}|{{ {'z': 1, 'a': 2}|tojson(sort_keys=true) }}|{{ 'é'|tojson(ensure_ascii=true) }}",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        t.render(&[], false).unwrap(),
        "{\"a\": [1, 2.5, \"é<\\\"\"], \"b\": null, \"c\": true}|[\n  1,\n  {\n    \"k\": \"v\"\n  }\n]|{\"a\": 2, \"z\": 1}|\"\\u00e9\""
    );
    // Tool-call arguments given as a JSON object.
    let t = ChatTemplate::new(
        "{{ messages[0].tool_calls[0].function.arguments|tojson }}",
        "",
        "",
    )
    .unwrap();
    let msgs = messages(
        json!([{"role": "assistant", "content": null, "tool_calls": [
            {"type": "function", "function": {"name": "f", "arguments": {"city": "Zürich", "n": 3}}}
        ]}]),
    );
    assert_eq!(
        t.render(&msgs, false).unwrap(),
        "{\"city\": \"Zürich\", \"n\": 3}"
    );
}

#[test]
fn python_string_methods() {
    let t = ChatTemplate::new(
        "{{ 'a,b,c'.split(',')[-1] }}|{{ 'a.b.c'.rsplit('.', 1)[0] }}|{{ '  x  '.strip() }}|{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith('x') }}|{{ 'Hi'.upper() }}|{{ 'a b'.split() }}|{{ messages[0].get('missing', 'd') }}",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        t.render(&[ChatMessage::user("x")], false).unwrap(),
        "c|a.b|x|True|False|HI|['a', 'b']|d"
    );
    // The R1-style reasoning strip.
    let t = ChatTemplate::new(
        "{% set c = messages[0].content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif %}{{ c }}",
        "",
        "",
    )
    .unwrap();
    assert_eq!(
        t.render(&[ChatMessage::assistant("<think>hm</think>Answer")], false)
            .unwrap(),
        "Answer"
    );
}

#[test]
fn raise_exception_is_an_invalid_argument_error() {
    let t = ChatTemplate::new(
        "{% if messages[0].role != 'user' %}{{ raise_exception('Conversation must start with user') }}{% endif %}ok",
        "",
        "",
    )
    .unwrap();
    assert_eq!(t.render(&[ChatMessage::user("x")], false).unwrap(), "ok");
    match t.render(&[ChatMessage::system("x")], false) {
        Err(Error::InvalidArgument(msg)) => {
            assert!(msg.contains("Conversation must start with user"), "{msg}")
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn syntax_and_runtime_errors_are_invalid_argument() {
    match ChatTemplate::new("{% if %}", "", "") {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("chat template"), "{msg}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // `'<｜User｜>' + none` fails at render time, as in Python.
    let t = v3();
    let msgs = messages(json!([{"role": "user", "content": null}]));
    assert!(matches!(
        t.render(&msgs, false),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn strftime_now_formats_the_current_date() {
    let t = ChatTemplate::new(
        "{{ strftime_now('%Y') }}|{{ strftime_now('%d %b %Y') }}",
        "",
        "",
    )
    .unwrap();
    let out = t.render(&[], false).unwrap();
    let (year, date) = out.split_once('|').unwrap();
    let year: i32 = year.parse().unwrap();
    assert!((2024..3000).contains(&year), "{out}");
    assert!(date.ends_with(&year.to_string()) || date.ends_with(&(year + 1).to_string()));
    assert_eq!(date.len(), "01 Jan 2025".len(), "{out}");
}

#[test]
fn namespace_and_loop_state() {
    let t = ChatTemplate::new(
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% if loop.last %}{{ ns.n }}{% endif %}{% endfor %}",
        "",
        "",
    )
    .unwrap();
    let msgs = vec![ChatMessage::user("a"), ChatMessage::assistant("b")];
    assert_eq!(t.render(&msgs, false).unwrap(), "2");
}
