use super::*;

struct Seq(u32);
impl rand_core::TryRng for Seq {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        Ok(self.0)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.try_next_u32()? as u64)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u32()? as u8;
        }
        Ok(())
    }
}

#[test]
fn random_and_in_range() {
    let mut rng = Seq(1);
    let ports: Vec<u16> = (0..100)
        .map(|_| ephemeral_port(&mut rng, |_| false).unwrap())
        .collect();
    assert!(ports.iter().all(|p| EPHEMERAL_PORTS.contains(p)));
    let mut distinct = ports.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() > 90, "ports should look random");
}

#[test]
fn skips_used_and_reports_exhaustion() {
    let mut rng = Seq(5);
    assert_eq!(ephemeral_port(&mut rng, |p| p != 60000), Some(60000));
    assert_eq!(ephemeral_port(&mut rng, |_| true), None);
}
