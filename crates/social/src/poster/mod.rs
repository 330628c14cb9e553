//! The share poster (issue 4, item 9): a 750 × 1334 PNG drawn by the server — a festive
//! red-and-gold design of our own (lanterns, fireworks, a 福 diamond), the programme's
//! name, the inviter's name and a QR code of the invite link — so a customer can share
//! one picture in a chat.
//!
//! Drawing uses `tiny-skia` (shapes, PNG encoding), `ab_glyph` (text) and `qrcode` (the
//! module matrix); no image files are shipped or copied.
//!
//! **The CJK font** is read at run time from the system, not embedded (a CJK font is
//! megabytes; embedding it would bloat the binary for every deployment): the first of
//! `HUOBAN_POSTER_FONT` (a path), WenQuanYi Micro Hei (`fonts-wqy-microhei`, Apache-2.0 /
//! GPL with font exception) or Noto Sans CJK (`fonts-noto-cjk`, OFL) that exists.
//! `scripts/test` and the demo's README instructions install `fonts-wqy-microhei`.
//! Without any of them the poster is still drawn, art and QR code included, but without
//! text, and a warning is logged once.

use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont, point};
use qrcode::{EcLevel, QrCode};
use tiny_skia::{
    Color, FillRule, GradientStop, LinearGradient, Paint, PathBuilder, Pixmap, Point, Rect, SpreadMode, Stroke,
    Transform,
};

pub const WIDTH: u32 = 750;
pub const HEIGHT: u32 = 1334;

/// Where the CJK font is looked for, after `HUOBAN_POSTER_FONT`.
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
];

static FONT: OnceLock<Option<FontVec>> = OnceLock::new();

fn font() -> Option<&'static FontVec> {
    FONT.get_or_init(|| {
        let env = std::env::var("HUOBAN_POSTER_FONT").ok();
        let found = env
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied())
            .find_map(|path| {
                let data = std::fs::read(path).ok()?;
                FontVec::try_from_vec_and_index(data, 0).ok()
            });
        if found.is_none() {
            tracing::warn!(
                "no CJK font found (install fonts-wqy-microhei or set HUOBAN_POSTER_FONT): posters are drawn without text"
            );
        }
        found
    })
    .as_ref()
}

/// True when posters carry their text (a CJK font was found).
pub fn has_font() -> bool {
    font().is_some()
}

/// Why a poster could not be drawn.
#[derive(Debug)]
pub struct PosterError(String);

impl std::fmt::Display for PosterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "poster: {}", self.0)
    }
}

impl std::error::Error for PosterError {}

fn rgb(r: u8, g: u8, b: u8) -> Color {
    Color::from_rgba8(r, g, b, 255)
}

const RED_TOP: (u8, u8, u8) = (214, 31, 38);
const RED_BOTTOM: (u8, u8, u8) = (150, 12, 20);
const GOLD: (u8, u8, u8) = (255, 204, 77);
const CREAM: (u8, u8, u8) = (255, 244, 214);

fn solid(c: (u8, u8, u8)) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(rgb(c.0, c.1, c.2));
    paint.anti_alias = true;
    paint
}

/// Draws the poster for `inviter` (shown as given), the programme `title` and the invite
/// `link` (the QR code's content) and encodes it as PNG.
pub fn render(inviter: &str, title: &str, link: &str) -> Result<Vec<u8>, PosterError> {
    let mut pixmap = Pixmap::new(WIDTH, HEIGHT).ok_or_else(|| PosterError("no canvas".into()))?;
    background(&mut pixmap)?;
    lanterns(&mut pixmap);
    fireworks(&mut pixmap);
    fu_diamond(&mut pixmap);
    let card = Rect::from_xywh(135.0, 780.0, 480.0, 480.0).ok_or_else(|| PosterError("card".into()))?;
    let card_path = rounded_rect(card, 28.0).ok_or_else(|| PosterError("card".into()))?;
    pixmap.fill_path(
        &card_path,
        &solid(CREAM),
        FillRule::Winding,
        Transform::identity(),
        None,
    );
    let stroke = Stroke {
        width: 6.0,
        ..Stroke::default()
    };
    pixmap.stroke_path(&card_path, &solid(GOLD), &stroke, Transform::identity(), None);
    qr(
        &mut pixmap,
        link,
        Rect::from_xywh(175.0, 800.0, 400.0, 400.0).ok_or_else(|| PosterError("qr".into()))?,
    )?;

    if let Some(font) = font() {
        let width = WIDTH as f32;
        text(&mut pixmap, font, "新春理财季", 84.0, width / 2.0, 520.0, GOLD);
        for (i, line) in wrap(title, 15).iter().take(2).enumerate() {
            text(
                &mut pixmap,
                font,
                line,
                40.0,
                width / 2.0,
                600.0 + 52.0 * i as f32,
                CREAM,
            );
        }
        let name: String = inviter.trim().chars().take(12).collect();
        text(
            &mut pixmap,
            font,
            &format!("{name} 邀请你"),
            44.0,
            width / 2.0,
            740.0,
            GOLD,
        );
        text(
            &mut pixmap,
            font,
            "扫码加入，一起赢好礼",
            34.0,
            width / 2.0,
            1240.0,
            (120, 20, 24),
        );
        text(&mut pixmap, font, "伙伴 · 与你同行", 28.0, width / 2.0, 1305.0, CREAM);
    }
    pixmap.encode_png().map_err(|e| PosterError(e.to_string()))
}

fn background(pixmap: &mut Pixmap) -> Result<(), PosterError> {
    let shader = LinearGradient::new(
        Point::from_xy(0.0, 0.0),
        Point::from_xy(0.0, HEIGHT as f32),
        vec![
            GradientStop::new(0.0, rgb(RED_TOP.0, RED_TOP.1, RED_TOP.2)),
            GradientStop::new(1.0, rgb(RED_BOTTOM.0, RED_BOTTOM.1, RED_BOTTOM.2)),
        ],
        SpreadMode::Pad,
        Transform::identity(),
    )
    .ok_or_else(|| PosterError("gradient".into()))?;
    let paint = Paint {
        shader,
        ..Paint::default()
    };
    let all = Rect::from_xywh(0.0, 0.0, WIDTH as f32, HEIGHT as f32).ok_or_else(|| PosterError("rect".into()))?;
    pixmap.fill_rect(all, &paint, Transform::identity(), None);
    // A gold frame.
    if let Some(frame) =
        Rect::from_xywh(18.0, 18.0, WIDTH as f32 - 36.0, HEIGHT as f32 - 36.0).and_then(|r| rounded_rect(r, 24.0))
    {
        let stroke = Stroke {
            width: 4.0,
            ..Stroke::default()
        };
        pixmap.stroke_path(&frame, &solid(GOLD), &stroke, Transform::identity(), None);
    }
    Ok(())
}

fn rounded_rect(r: Rect, radius: f32) -> Option<tiny_skia::Path> {
    let (x, y, w, h) = (r.x(), r.y(), r.width(), r.height());
    let mut pb = PathBuilder::new();
    pb.move_to(x + radius, y);
    pb.line_to(x + w - radius, y);
    pb.quad_to(x + w, y, x + w, y + radius);
    pb.line_to(x + w, y + h - radius);
    pb.quad_to(x + w, y + h, x + w - radius, y + h);
    pb.line_to(x + radius, y + h);
    pb.quad_to(x, y + h, x, y + h - radius);
    pb.line_to(x, y + radius);
    pb.quad_to(x, y, x + radius, y);
    pb.close();
    pb.finish()
}

/// Two hanging lanterns: a string, a gold cap, a red body with gold ribs, a tassel.
fn lanterns(pixmap: &mut Pixmap) {
    for (cx, top, len) in [(120.0_f32, 0.0_f32, 90.0_f32), (630.0, 0.0, 140.0)] {
        let body_y = top + len + 60.0;
        let mut string = PathBuilder::new();
        string.move_to(cx, top);
        string.line_to(cx, body_y - 50.0);
        if let Some(p) = string.finish() {
            let stroke = Stroke {
                width: 3.0,
                ..Stroke::default()
            };
            pixmap.stroke_path(&p, &solid(GOLD), &stroke, Transform::identity(), None);
        }
        if let Some(cap) = Rect::from_xywh(cx - 22.0, body_y - 62.0, 44.0, 14.0) {
            pixmap.fill_rect(cap, &solid(GOLD), Transform::identity(), None);
        }
        if let Some(body) = Rect::from_xywh(cx - 56.0, body_y - 50.0, 112.0, 100.0).and_then(PathBuilder::from_oval) {
            pixmap.fill_path(
                &body,
                &solid((235, 45, 40)),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
            let stroke = Stroke {
                width: 3.0,
                ..Stroke::default()
            };
            pixmap.stroke_path(&body, &solid(GOLD), &stroke, Transform::identity(), None);
        }
        for dx in [-24.0_f32, 0.0, 24.0] {
            let mut rib = PathBuilder::new();
            rib.move_to(cx + dx, body_y - 48.0);
            rib.quad_to(cx + dx * 1.8, body_y, cx + dx, body_y + 48.0);
            if let Some(p) = rib.finish() {
                let stroke = Stroke {
                    width: 2.0,
                    ..Stroke::default()
                };
                pixmap.stroke_path(&p, &solid(GOLD), &stroke, Transform::identity(), None);
            }
        }
        if let Some(base) = Rect::from_xywh(cx - 18.0, body_y + 48.0, 36.0, 12.0) {
            pixmap.fill_rect(base, &solid(GOLD), Transform::identity(), None);
        }
        for dx in [-8.0_f32, 0.0, 8.0] {
            if let Some(t) = Rect::from_xywh(cx + dx - 1.5, body_y + 60.0, 3.0, 44.0) {
                pixmap.fill_rect(t, &solid(GOLD), Transform::identity(), None);
            }
        }
    }
}

/// Gold bursts of short rays.
fn fireworks(pixmap: &mut Pixmap) {
    for (cx, cy, r) in [
        (250.0_f32, 150.0_f32, 60.0_f32),
        (470.0, 110.0, 44.0),
        (380.0, 250.0, 36.0),
    ] {
        for i in 0..16 {
            let a = i as f32 * std::f32::consts::TAU / 16.0;
            let mut ray = PathBuilder::new();
            ray.move_to(cx + a.cos() * r * 0.35, cy + a.sin() * r * 0.35);
            ray.line_to(cx + a.cos() * r, cy + a.sin() * r);
            if let Some(p) = ray.finish() {
                let stroke = Stroke {
                    width: 3.0,
                    line_cap: tiny_skia::LineCap::Round,
                    ..Stroke::default()
                };
                pixmap.stroke_path(&p, &solid(GOLD), &stroke, Transform::identity(), None);
            }
            if let Some(dot) = PathBuilder::from_circle(cx + a.cos() * (r + 8.0), cy + a.sin() * (r + 8.0), 3.0) {
                pixmap.fill_path(&dot, &solid(CREAM), FillRule::Winding, Transform::identity(), None);
            }
        }
    }
}

/// A gold diamond with 福 on it (the character needs the font).
fn fu_diamond(pixmap: &mut Pixmap) {
    let (cx, cy, r) = (375.0_f32, 380.0_f32, 70.0_f32);
    let mut d = PathBuilder::new();
    d.move_to(cx, cy - r);
    d.line_to(cx + r, cy);
    d.line_to(cx, cy + r);
    d.line_to(cx - r, cy);
    d.close();
    if let Some(p) = d.finish() {
        pixmap.fill_path(&p, &solid(GOLD), FillRule::Winding, Transform::identity(), None);
    }
    if let Some(font) = font() {
        text(pixmap, font, "福", 80.0, cx, cy + 28.0, (190, 20, 28));
    }
}

/// The QR code of `link`, black on white, with a four-module quiet zone, centred in `area`.
fn qr(pixmap: &mut Pixmap, link: &str, area: Rect) -> Result<(), PosterError> {
    let code =
        QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).map_err(|e| PosterError(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let total = modules + 8;
    let module = (area.width().min(area.height()) / total as f32).floor().max(1.0);
    let side = module * total as f32;
    let x0 = area.x() + (area.width() - side) / 2.0;
    let y0 = area.y() + (area.height() - side) / 2.0;
    if let Some(white) = Rect::from_xywh(x0, y0, side, side) {
        pixmap.fill_rect(white, &solid((255, 255, 255)), Transform::identity(), None);
    }
    let mut dark = solid((0, 0, 0));
    dark.anti_alias = false;
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = ((i % modules) + 4, (i / modules) + 4);
            if let Some(cell) = Rect::from_xywh(x0 + mx as f32 * module, y0 + my as f32 * module, module, module) {
                pixmap.fill_rect(cell, &dark, Transform::identity(), None);
            }
        }
    }
    Ok(())
}

/// Splits `s` into lines of at most `per_line` characters.
fn wrap(s: &str, per_line: usize) -> Vec<String> {
    let chars: Vec<char> = s.trim().chars().collect();
    chars.chunks(per_line.max(1)).map(|c| c.iter().collect()).collect()
}

/// Draws `s` centred on `cx` with its baseline at `baseline`.
fn text(pixmap: &mut Pixmap, font: &FontVec, s: &str, px: f32, cx: f32, baseline: f32, color: (u8, u8, u8)) {
    let scale = PxScale::from(px);
    let scaled = font.as_scaled(scale);
    let ids: Vec<_> = s.chars().map(|c| font.glyph_id(c)).collect();
    let width: f32 = ids.iter().map(|id| scaled.h_advance(*id)).sum();
    let mut x = cx - width / 2.0;
    let (w, h) = (pixmap.width() as i32, pixmap.height() as i32);
    let data = pixmap.data_mut();
    for id in ids {
        let glyph = id.with_scale_and_position(scale, point(x, baseline));
        x += scaled.h_advance(id);
        let Some(outlined) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outlined.px_bounds();
        outlined.draw(|gx, gy, coverage| {
            let px = bounds.min.x as i32 + gx as i32;
            let py = bounds.min.y as i32 + gy as i32;
            if px < 0 || py < 0 || px >= w || py >= h {
                return;
            }
            let i = (py as usize * w as usize + px as usize) * 4;
            let a = coverage.clamp(0.0, 1.0);
            // The canvas is opaque, so premultiplied blending is a plain mix.
            for (k, c) in [color.0, color.1, color.2].into_iter().enumerate() {
                let dst = f32::from(data[i + k]);
                data[i + k] = (f32::from(c) * a + dst * (1.0 - a)).round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poster_is_a_png_of_the_right_size_whose_qr_code_reads_back_the_link() {
        let link = "https://bank.example/h5/invite?code=K7M2QX9P";
        let png = render("王小明", "邀请三位好友完成理财测试，解锁专属优惠券", link).expect("rendered");
        let pixmap = Pixmap::decode_png(&png).expect("a PNG");
        assert_eq!((pixmap.width(), pixmap.height()), (WIDTH, HEIGHT));
        let (w, h) = (pixmap.width() as usize, pixmap.height() as usize);
        let data = pixmap.data();
        let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
            let i = (y * w + x) * 4;
            ((u16::from(data[i]) + u16::from(data[i + 1]) + u16::from(data[i + 2])) / 3) as u8
        });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code");
        let (_, content) = grids[0].decode().expect("decodes");
        assert_eq!(content, link);
    }

    #[test]
    fn long_titles_wrap() {
        assert_eq!(wrap("一二三四五", 2), vec!["一二", "三四", "五"]);
    }
}
