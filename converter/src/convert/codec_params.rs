//! `--codec FAMILY --codec-param KEY=VALUE`: codec families whose members differ in a
//! parameter that fixes their layout are registered as one id per value (an id pins its
//! bytes, SPEC.md §7.1); this maps a family name and its parameters to that id.

use hct_format::codec::{spectral, Codec};

/// The codec id for `--codec` and its `--codec-param`s, or a usage message.
pub fn resolve(codec: Option<String>, params: &[String]) -> Result<Option<String>, String> {
    let Some(codec) = codec else {
        return Ok(None);
    };
    let mut pairs = Vec::with_capacity(params.len());
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--codec-param {p:?}: expected KEY=VALUE"))?;
        pairs.push((k.trim(), v.trim()));
    }
    match codec.as_str() {
        "hct_v3" => hct_v3(&pairs).map(Some),
        _ if pairs.is_empty() => Ok(Some(codec)),
        _ => Err(format!(
            "codec {codec} takes no --codec-param (families with parameters: hct_v3)"
        )),
    }
}

fn hct_v3(pairs: &[(&str, &str)]) -> Result<String, String> {
    let allowed = || {
        spectral::CODECS
            .iter()
            .map(|c| format!("{:.2}", c.retention_percent() as f64 / 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut retention = 0.9;
    for &(k, v) in pairs {
        match k {
            "retention" => {
                retention = v.parse::<f64>().map_err(|_| {
                    format!(
                        "--codec-param retention={v}: not a number (one of {})",
                        allowed()
                    )
                })?
            }
            _ => {
                return Err(format!(
                    "codec hct_v3 has no parameter {k:?} (it takes retention, target_cos or policy=role)"
                ))
            }
        }
    }
    spectral::for_retention(retention)
        .map(|c| c.id().to_string())
        .ok_or_else(|| {
            format!(
                "codec hct_v3: no id for retention {retention} (one of {})",
                allowed()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_map_to_ids_and_bad_params_are_usage_errors() {
        let r = |c: &str, p: &[&str]| {
            resolve(
                Some(c.into()),
                &p.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            r("hct_v3", &["retention=0.9"]),
            Ok(Some("hct_v3_r90".into()))
        );
        assert_eq!(
            r("hct_v3", &["retention=0.25"]),
            Ok(Some("hct_v3_r25".into()))
        );
        assert_eq!(r("hct_v3", &[]), Ok(Some("hct_v3_r90".into())));
        assert_eq!(r("int4_opt_v1", &[]), Ok(Some("int4_opt_v1".into())));
        assert!(r("hct_v3", &["retention=0.8"])
            .unwrap_err()
            .contains("0.25, 0.50, 0.70, 0.90, 0.98"));
        assert!(r("hct_v3", &["tile=8x8"])
            .unwrap_err()
            .contains("no parameter"));
        assert!(r("hct_v3", &["retention"])
            .unwrap_err()
            .contains("KEY=VALUE"));
        assert!(r("int4_opt_v1", &["retention=0.9"])
            .unwrap_err()
            .contains("takes no"));
        assert_eq!(resolve(None, &[]), Ok(None));
    }
}
