//! The gallery's two pages as HTML. Every text from the database goes
//! through [`escape`]: viewer names and subjects are anyone's input.

use super::Gallery;
use dynamo_store::{GalleryImage, RECENT_DAYS};
use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What the image shows, in words: the friend's name or the subject.
fn title(image: &GalleryImage) -> String {
    match &image.friend_name {
        Some(name) => format!("{name}, from {}", image.viewer_name),
        None => format!("{}, from {}", image.description, image.viewer_name),
    }
}

fn head(title: &str, extra: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"/favicon.ico\">\n\
         <link rel=\"stylesheet\" href=\"/assets/gallery.css\">\n{extra}</head>\n",
        escape(title)
    )
}

/// `/gallery`: one page of aired images, and a link to older ones.
pub fn index(gallery: &Gallery, page: &[GalleryImage], older: Option<&str>, paged: bool) -> String {
    let mut html = head(
        "Gallery: what aired on stream",
        &format!(
            "<link rel=\"canonical\" href=\"{}\">\n",
            escape(&gallery.absolute("/gallery"))
        ),
    );
    html.push_str("<body>\n<header><h1>What aired on stream</h1>\n");
    let _ = writeln!(
        html,
        "<p>Viewers' images from the last {RECENT_DAYS} days of broadcasts, newest first.</p></header>"
    );
    html.push_str("<main>\n");
    if page.is_empty() {
        html.push_str("<p class=\"empty\">Nothing has aired lately.</p>\n");
    } else {
        html.push_str("<ul class=\"images\">\n");
        for image in page {
            let _ = writeln!(
                html,
                "<li><a href=\"/gallery/{id}\"><img src=\"{src}\" alt=\"{alt}\" loading=\"lazy\" \
                 decoding=\"async\" width=\"512\" height=\"512\"></a>\
                 <p><a href=\"/gallery/{id}\">{what}</a> <span class=\"viewer\">from {viewer}</span></p></li>",
                id = image.public_id,
                src = escape(&image.image_url),
                alt = escape(&title(image)),
                what = escape(image.friend_name.as_deref().unwrap_or(&image.description)),
                viewer = escape(&image.viewer_name),
            );
        }
        html.push_str("</ul>\n");
    }
    html.push_str("<nav aria-label=\"pages\">");
    if paged {
        html.push_str("<a href=\"/gallery\">Newest</a> ");
    }
    if let Some(cursor) = older {
        let _ = write!(
            html,
            "<a href=\"/gallery?before={}\" rel=\"next\">Older</a>",
            escape(cursor)
        );
    }
    html.push_str("</nav>\n</main>\n</body>\n</html>\n");
    html
}

/// `/gallery/{public_id}`: one image, with the tags a chat link's preview reads.
pub fn image(gallery: &Gallery, image: &GalleryImage) -> String {
    let what = title(image);
    let url = gallery.absolute(&format!("/gallery/{}", image.public_id));
    let image_url = gallery.absolute(&image.image_url);
    let description = format!(
        "A {} {} asked for on stream.",
        image.style, image.viewer_name
    );
    let mut tags = String::new();
    for (property, content) in [
        ("og:type", "website"),
        ("og:site_name", "dynamo gallery"),
        ("og:title", &what),
        ("og:description", &description),
        ("og:url", &url),
        ("og:image", &image_url),
        ("og:image:alt", &what),
    ] {
        let _ = writeln!(
            tags,
            "<meta property=\"{property}\" content=\"{}\">",
            escape(content)
        );
    }
    for (name, content) in [
        ("twitter:card", "summary_large_image"),
        ("twitter:title", &what),
        ("twitter:description", &description),
        ("twitter:image", &image_url),
        ("twitter:image:alt", &what),
        ("description", &description),
    ] {
        let _ = writeln!(
            tags,
            "<meta name=\"{name}\" content=\"{}\">",
            escape(content)
        );
    }
    let _ = writeln!(tags, "<link rel=\"canonical\" href=\"{}\">", escape(&url));
    let mut html = head(&what, &tags);
    let _ = write!(
        html,
        "<body>\n<main class=\"one\">\n<h1>{heading}</h1>\n\
         <img src=\"{src}\" alt=\"{alt}\" width=\"1024\" height=\"1024\">\n\
         <p>{description}</p>\n\
         <nav aria-label=\"gallery\"><a href=\"/gallery\">See everything that aired</a></nav>\n\
         </main>\n</body>\n</html>\n",
        heading = escape(&what),
        src = escape(&image.image_url),
        alt = escape(&what),
        description = escape(&description),
    );
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_element_content_and_both_quotes() {
        assert_eq!(
            escape(r#"<script>"a" & 'b'</script>"#),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
