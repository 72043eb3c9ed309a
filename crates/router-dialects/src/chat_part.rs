//! A chat request's content parts, in the one shape both dialects write them: a
//! Messages block and a Responses input part become these.

use crate::json_out::{Seq, string};

/// `{"type":"text","text":…}`.
pub(crate) fn text(out: &mut Vec<u8>, text: &str) {
    let mut o = Seq::object(out);
    string(o.key("type"), "text");
    string(o.key("text"), text);
    o.end();
}

/// `{"type":"image_url","image_url":{"url":…,"detail":…}}`, the detail when said.
pub(crate) fn image(out: &mut Vec<u8>, url: &str, detail: Option<&str>) {
    let mut o = Seq::object(out);
    string(o.key("type"), "image_url");
    let mut image = Seq::object(o.key("image_url"));
    string(image.key("url"), url);
    if let Some(detail) = detail {
        string(image.key("detail"), detail);
    }
    image.end();
    o.end();
}

/// `{"type":"file","file":{"file_data":…,"filename":…}}`, the name when known.
pub(crate) fn file(out: &mut Vec<u8>, data: &str, name: Option<&str>) {
    let mut o = Seq::object(out);
    string(o.key("type"), "file");
    let mut file = Seq::object(o.key("file"));
    string(file.key("file_data"), data);
    if let Some(name) = name {
        string(file.key("filename"), name);
    }
    file.end();
    o.end();
}
