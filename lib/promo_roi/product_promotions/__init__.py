"""Product promotions: in-store displays, mailer placements and shelf discounts per product, store and week
(issue 14). The household campaigns live in the rest of the package; this room holds what concerns
placements of products."""
