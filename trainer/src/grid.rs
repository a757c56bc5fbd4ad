//! Writes batches of generated images as one PNG grid.

use anyhow::{Context, Result};
use burn::prelude::*;
use image::RgbImage;
use std::path::Path;

/// Arranges `[n, 3, side, side]` images in [-1, 1] into a grid `columns` wide, one pixel of
/// black between cells, upscaled by `scale` (nearest neighbour).
pub fn to_grid(images: Tensor<4>, columns: usize, scale: u32) -> Result<RgbImage> {
    let [count, channels, side, _] = images.dims();
    anyhow::ensure!(
        channels == 3,
        "expected RGB images, got {channels} channels"
    );
    let values = images
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read generated images: {e:?}"))?;
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    let cell = side as u32 * scale + 1;
    let mut grid = RgbImage::new(columns as u32 * cell - 1, rows as u32 * cell - 1);
    let plane = side * side;
    for n in 0..count {
        let (col, row) = ((n % columns) as u32, (n / columns) as u32);
        let image = &values[n * 3 * plane..(n + 1) * 3 * plane];
        for (x, y, pixel) in grid.enumerate_pixels_mut() {
            if x / cell != col || y / cell != row || x % cell == cell - 1 || y % cell == cell - 1 {
                continue;
            }
            let (ix, iy) = ((x % cell / scale) as usize, (y % cell / scale) as usize);
            for c in 0..3 {
                pixel[c] = to_byte(image[c * plane + iy * side + ix]);
            }
        }
    }
    Ok(grid)
}

/// A value in [-1, 1] as a byte.
pub fn to_byte(value: f32) -> u8 {
    ((value.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
}

/// Encodes a PNG in memory. Writing the bytes with `std::fs` afterwards reports every write
/// error: `image`'s own `save` writes through a buffer whose final flush error is dropped, so a
/// full disk left a truncated file and no error.
pub fn png_bytes(image: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, image::ImageFormat::Png)?;
    Ok(bytes.into_inner())
}

/// Saves a PNG atomically: written beside the target, then renamed over it.
pub fn save_png(image: &RgbImage, path: &Path) -> Result<()> {
    let bytes = png_bytes(image).with_context(|| format!("cannot encode {}", path.display()))?;
    let temporary = path.with_extension("png.tmp");
    if let Err(e) = std::fs::write(&temporary, bytes) {
        // Leave no half-written file behind (a full disk, for one).
        let _ = std::fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("cannot write {}", temporary.display()));
    }
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_places_cells_with_gutters() {
        let device = Device::flex();
        // Two 2x2 images: all -1 (black) and all 1 (white).
        let mut values = vec![-1f32; 12];
        values.extend(vec![1f32; 12]);
        let images = Tensor::<4>::from_data(TensorData::new(values, [2, 3, 2, 2]), &device);
        let grid = to_grid(images, 2, 1).unwrap();
        assert_eq!(grid.dimensions(), (5, 2));
        assert_eq!(grid.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(grid.get_pixel(3, 1).0, [255, 255, 255]);
        assert_eq!(grid.get_pixel(2, 0).0, [0, 0, 0]);
    }
}
