//! Grouping the accepted windows into faces, as OpenCV's `groupRectangles`.

use super::Rect;

/// OpenCV's `groupRectangles(rects, min_neighbors, eps)`: union-find clustering of similar boxes,
/// averaging, dropping small groups and groups nested in stronger ones.
pub fn group_rectangles(rects: &[Rect], min_neighbors: usize, eps: f64) -> Vec<Rect> {
    if min_neighbors == 0 {
        return rects.to_vec();
    }
    let n = rects.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(p: &mut [usize], mut a: usize) -> usize {
        while p[a] != a {
            p[a] = p[p[a]];
            a = p[a];
        }
        a
    }
    let similar = |a: &Rect, b: &Rect| {
        let d = eps * (a.w.min(b.w) + a.h.min(b.h)) as f64 * 0.5;
        ((a.x - b.x).abs() as f64) <= d
            && ((a.y - b.y).abs() as f64) <= d
            && ((a.x + a.w - b.x - b.w).abs() as f64) <= d
            && ((a.y + a.h - b.y - b.h).abs() as f64) <= d
    };
    for i in 0..n {
        for j in i + 1..n {
            if similar(&rects[i], &rects[j]) {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                if a != b {
                    parent[a] = b;
                }
            }
        }
    }
    let mut classes: Vec<(usize, [i64; 4], usize)> = Vec::new(); // root, sums, count
    for (i, r) in rects.iter().enumerate() {
        let root = find(&mut parent, i);
        match classes.iter_mut().find(|c| c.0 == root) {
            Some(c) => {
                c.1[0] += r.x;
                c.1[1] += r.y;
                c.1[2] += r.w;
                c.1[3] += r.h;
                c.2 += 1;
            }
            None => classes.push((root, [r.x, r.y, r.w, r.h], 1)),
        }
    }
    let groups: Vec<(Rect, usize)> = classes
        .iter()
        .map(|(_, s, cnt)| {
            let k = 1.0f32 / *cnt as f32;
            let avg = |v: i64| (v as f32 * k).round_ties_even() as i64;
            (
                Rect {
                    x: avg(s[0]),
                    y: avg(s[1]),
                    w: avg(s[2]),
                    h: avg(s[3]),
                },
                *cnt,
            )
        })
        .collect();
    let mut out = Vec::new();
    for (i, (r1, n1)) in groups.iter().enumerate() {
        if *n1 <= min_neighbors {
            continue;
        }
        let nested = groups.iter().enumerate().any(|(j, (r2, n2))| {
            if j == i || *n2 <= min_neighbors {
                return false;
            }
            let dx = (r2.w as f64 * eps).round_ties_even() as i64;
            let dy = (r2.h as f64 * eps).round_ties_even() as i64;
            r1.x >= r2.x - dx
                && r1.y >= r2.y - dy
                && r1.x + r1.w <= r2.x + r2.w + dx
                && r1.y + r1.h <= r2.y + r2.h + dy
                && (*n2 > 3.max(*n1) || *n1 < 3)
        });
        if !nested {
            out.push(*r1);
        }
    }
    out
}
